"""A suggestion for one hole of one saved version of a file, and the worker thread that generates them.

A suggestion remembers the exact text (and its sha256) it was computed from: accepting it is only
allowed while the file still holds that text. Generation is the editor's: the same context around
the hole (`completion`), the same suggestion pipeline (`engine.prompts.suggestion`) for where it
ends. The worker runs one generation at a time, in the order saves came; a newer save of a file
cancels the queued and running generations of its older version.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.events import Step
from engine.prompts.suggestion import Context, Pipeline, Rules
from engine.request import GenerationConfig
from nemodiff_tui.completion import context_at
from nemodiff_tui.engine_factory import CompletionEngine, Generation, TokenTexts
from nemodiff_tui.trace import Trace
from nemodiff_tui.watch.holes import Hole

Status = Literal["pending", "denoising", "ready", "stale", "accepted", "rejected", "failed"]
RETRY_TEMPERATURE = 0.8  # as the app's sampled alternatives
OPEN: tuple[Status, ...] = ("pending", "denoising", "ready")  # what a newer version of the file replaces


@dataclass(eq=False)
class Suggestion:
    id: int
    path: Path
    source: str  # the file's text the suggestion was computed from
    sha256: str  # of `source` encoded as UTF-8, i.e. of the file's bytes then
    hole: Hole
    context: Context
    saved_at: float  # time.monotonic() of the save's first event
    status: Status = "pending"
    text: str = ""  # the final suggestion once ready
    mode: str = ""  # the decoding mode that ran
    tokens_per_forward: float = 0.0
    latency: float | None = None  # seconds from the save to ready
    error: str = ""
    trace: Trace | None = None
    generation: Generation | None = field(default=None, repr=False)
    seed: int | None = None  # a retry samples (at RETRY_TEMPERATURE, this seed); None: greedy

    @classmethod
    def at(
        cls, id: int, path: Path, source: str, sha256: str, hole: Hole, context_chars: int, saved_at: float
    ) -> "Suggestion":
        """A pending suggestion for `hole`, with the context the editor would send at that point
        (the hole's own span left out)."""
        lines = (source[: hole.start] + source[hole.end :]).split("\n")
        context = context_at(lines, hole.line - 1, hole.column - 1, context_chars)
        return cls(id, path, source, sha256, hole, context, saved_at)

    @property
    def line(self) -> int:
        return self.hole.line

    @property
    def column(self) -> int:
        return self.hole.column

    def edited(self, text: str | None = None) -> str:
        """The file's text with the suggestion (or `text`) in place of the hole; a CRLF file gets CRLF lines."""
        text = self.text if text is None else text
        text = text.replace("\n", "\r\n") if "\r\n" in self.source else text
        return self.source[: self.hole.start] + text + self.source[self.hole.end :]

    def to_json(self) -> dict:
        return {
            "line": self.line,
            "column": self.column,
            "text": self.text,
            "mode": self.mode,
            "tokens_per_forward": self.tokens_per_forward,
        }


def generate(
    engine: CompletionEngine,
    s: Suggestion,
    config: GenerationConfig,
    max_lines: int,
    texts: TokenTexts | None = None,
    on_event: Callable[[Suggestion], None] | None = None,
) -> None:
    """Run `s` to the end on this thread: stream into `s.trace`, then set its text (status
    "ready") unless it was made stale meanwhile."""
    pipeline = Pipeline(s.context, Rules(max_lines=max_lines))
    if s.seed is not None:  # greedy decoding would give the rejected text again
        config = config.replace(temperature=RETRY_TEMPERATURE, seed=s.seed)
    s.trace = Trace(engine.resolve_mode(config)[0])
    s.generation = engine.generate(pipeline.request(config))
    if s.status != "denoising":  # cancelled between leaving the queue and now
        s.generation.cancel()
    try:
        for event in pipeline.follow(s.generation):
            s.trace.add(event, texts(event.tokens) if texts is not None and isinstance(event, Step) else ())
            if on_event is not None:
                on_event(s)
    finally:
        s.generation = None
    done = s.trace.done
    if s.status == "denoising" and done is not None:
        s.text = pipeline.suggestion
        s.mode, s.tokens_per_forward = done.mode, done.tokens_per_forward
        s.latency = time.monotonic() - s.saved_at
        s.status = "ready"


class Worker:
    """Generates queued suggestions one at a time on a daemon thread, once it has an engine."""

    def __init__(self, config: GenerationConfig, max_lines: int, on_event: Callable[[Suggestion], None]):
        self.config = config
        self.max_lines = max_lines
        self.on_event = on_event
        self._engine: CompletionEngine | None = None
        self._texts: TokenTexts | None = None
        self._queue: deque[Suggestion] = deque()
        self._current: Suggestion | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="watch-generate", daemon=True)
        self._thread.start()

    def set_engine(self, engine: CompletionEngine) -> None:
        with self._cond:
            self._engine, self._texts = engine, TokenTexts(engine.tokenizer)
            self._cond.notify()

    def submit(self, suggestions: list[Suggestion]) -> None:
        with self._cond:
            self._queue.extend(suggestions)
            self._cond.notify()

    def cancel(self, suggestions: list[Suggestion]) -> None:
        """Make `suggestions` stale: dropped from the queue, and the running one stopped within a forward."""
        with self._cond:
            for s in suggestions:
                if s.status in OPEN:
                    s.status = "stale"
                if s in self._queue:
                    self._queue.remove(s)
            current = self._current
        if current is not None and current.status == "stale" and current.generation is not None:
            current.generation.cancel()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            current = self._current
            self._cond.notify()
        if current is not None and current.generation is not None:
            current.generation.cancel()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._engine is None or not self._queue):
                    self._cond.wait()
                if self._closed:
                    return
                s = self._current = self._queue.popleft()
                s.status = "denoising"
                engine, texts = self._engine, self._texts
            self.on_event(s)
            try:
                generate(engine, s, self.config, self.max_lines, texts, self.on_event)
            except Exception as e:  # a failed generation is shown on its suggestion; the worker goes on
                s.status, s.error = "failed", f"{type(e).__name__}: {e}"
            with self._cond:
                self._current = None
            self.on_event(s)
