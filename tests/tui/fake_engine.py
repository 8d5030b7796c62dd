"""A recorded engine for the app's tests: replays an event trace deterministically.

The trace is JSON lines: a header `{"type": "vocab", "tokens": [...], "mode": ...}` (token id ->
text, for the denoising grid), then events in `engine.events.to_json` form. Replay sleeps
`delay` seconds before every Step, can hold at a step until `release()` (for mid-generation
snapshots), and honours `cancel()` between events as the real engine does between forwards.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from engine.events import Commit, Done, Event, Note, Step
from engine.request import GenerationConfig, Request

TRACE = Path(__file__).with_name("fibonacci_trace.jsonl")
EVENTS = {"step": Step, "commit": Commit, "done": Done, "note": Note}


def load_trace(path: Path = TRACE) -> tuple[dict, list[Event]]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    header, events = lines[0], lines[1:]
    return header, [EVENTS[e["type"]](**e) for e in events]


class FakeTokenizer:
    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.special_ids = frozenset(i for i, t in enumerate(tokens) if t.startswith("<") and t.endswith(">"))

    def decode(self, ids: list[int]) -> str:
        return "".join(self.tokens[i] for i in ids)


class FakeGeneration:
    def __init__(self, events: list[Event], delay: float, hold_at: int | None):
        self.events = events
        self.delay = delay
        self.hold_at = hold_at  # hold before yielding the Step with this index, until released
        self.steps_yielded = 0
        self.held = threading.Event()
        self._release = threading.Event()
        self._cancel = threading.Event()
        self.finished = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()
        self._release.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def release(self) -> None:
        self._release.set()

    def __iter__(self):
        text, ids = "", []
        try:
            for event in self.events:
                if isinstance(event, Step):
                    if self.steps_yielded == self.hold_at:
                        self.held.set()
                        self._release.wait()
                    time.sleep(self.delay)
                    self.steps_yielded += 1
                if self._cancel.is_set():
                    yield Done(
                        text=text,
                        token_ids=ids,
                        n_tokens=len(ids),
                        nfe=self.steps_yielded,
                        tokens_per_forward=0.0,
                        seconds=0.0,
                        tokens_per_second=0.0,
                        mode="diffusion",
                        stop_reason="cancelled",
                    )
                    return
                if isinstance(event, Commit):
                    text, ids = text + event.text, ids + event.token_ids
                yield event
        finally:
            self.finished.set()


class FakeEngine:
    """Serves every request by replaying the same events; remembers requests and generations."""

    def __init__(
        self, events: list[Event], tokenizer, mode: str, delay: float = 0.01, hold_at: int | None = None
    ):
        self.events = events
        self.name = "recorded"
        self.mode = mode
        self.tokenizer = tokenizer
        self.delay = delay
        self.hold_at = hold_at
        self.requests: list[Request] = []
        self.generations: list[FakeGeneration] = []

    @classmethod
    def from_trace(cls, path: Path = TRACE, delay: float = 0.01, hold_at: int | None = None) -> "FakeEngine":
        header, events = load_trace(path)
        return cls(events, FakeTokenizer(header["tokens"]), header["mode"], delay, hold_at)

    def generate(self, request: Request) -> FakeGeneration:
        self.requests.append(request)
        generation = FakeGeneration(self.events, self.delay, self.hold_at)
        self.generations.append(generation)
        return generation

    def resolve_mode(self, config: GenerationConfig) -> tuple[str, list[str]]:
        return self.mode, []

    def factory(self, model: str, progress) -> "FakeEngine":
        """An `EngineFactory` handing out this engine (progress reported in two steps)."""
        progress(1, 2, "embed")
        progress(2, 2, "head")
        return self
