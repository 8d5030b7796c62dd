"""Watch-mode test helpers: a fast deterministic fake engine and bounded waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.events import Commit, Done, Step
from engine.request import GenerationConfig, Request
from nemodiff_tui.watch.session import WatchSession
from nemodiff_tui.watch.suggestions import Suggestion

ANSWER = "return 42"
QUIET = 0.1  # the sessions' debounce in these tests


class FakeTokenizer:
    def decode(self, ids: list[int]) -> str:
        return "".join(chr(ord("a") + i % 26) for i in ids)


class FakeGeneration:
    """Yields one denoise step and one commit per character of the answer; `cancel` stops it."""

    def __init__(self, engine: "FakeEngine", request: Request):
        self.engine = engine
        self.request = request
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def __iter__(self) -> Iterator:
        text = self.engine.answer(self.request)
        n = 0
        if self.engine.gate is not None:
            while not self.engine.gate.is_set() and not self.cancelled.is_set():
                time.sleep(0.005)
        for i, char in enumerate(text):
            if self.cancelled.is_set():
                break
            yield Step("denoise", 0, i, i + 1, [i], [True], [1.0], [i])
            yield Commit([i], char, i + 1)
            n += 1
        yield Done(
            text=text[:n],
            token_ids=list(range(n)),
            n_tokens=n,
            nfe=max(n, 1),
            tokens_per_forward=1.0,
            seconds=0.001,
            tokens_per_second=1000.0,
            mode="diffusion",
            stop_reason="cancelled" if self.cancelled.is_set() else "eos",
        )


class FakeEngine:
    """Answers every request with `answer(request)`; records requests and generations.
    With `gate` set, a generation waits for the gate (or its cancellation) before its first step."""

    name = "fake"

    def __init__(
        self, answer: Callable[[Request], str] = lambda request: ANSWER, gate: threading.Event | None = None
    ):
        self.answer = answer
        self.gate = gate
        self.tokenizer = FakeTokenizer()
        self.generations: list[FakeGeneration] = []

    @property
    def requests(self) -> list[Request]:
        return [g.request for g in self.generations]

    def resolve_mode(self, config: GenerationConfig) -> tuple[str, list[str]]:
        return "diffusion", []

    def generate(self, request: Request) -> FakeGeneration:
        generation = FakeGeneration(self, request)
        self.generations.append(generation)
        return generation


def wait_until(condition: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `condition` every 10 ms; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def settle() -> None:
    """Long enough for any further batch to have gone out (a few debounce periods)."""
    time.sleep(QUIET * 4)


def ready(session: WatchSession, path: Path | None = None) -> list[Suggestion]:
    return [s for s in session.suggestions if s.status == "ready" and (path is None or s.path == path)]
