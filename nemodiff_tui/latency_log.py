"""Latency of every completion, from the last keypress to the first token on screen and to the end.

Kept in `LatencyLog.records`, and appended as JSON lines to `$NEMODIFF_DEBUG_LOG` when it is set,
so a session under tmux can be measured without instrumenting the terminal.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

from engine.events import Done

ENV = "NEMODIFF_DEBUG_LOG"


@dataclass
class Latency:
    model: str
    mode: str
    key_to_request_ms: float
    key_to_first_token_ms: float | None = None  # first committed or guessed text in the ghost
    request_to_first_token_ms: float | None = None
    request_to_done_ms: float | None = None  # until the app handled the Done event
    engine_ms: float | None = None  # the engine's own time for the generation
    n_tokens: int = 0
    nfe: int = 0
    stop_reason: str = ""


class LatencyLog:
    def __init__(self, path: str | None = None):
        self.path = path if path is not None else os.environ.get(ENV)
        self.error: str | None = None  # why logging to `path` stopped
        self.records: list[Latency] = []
        self._key = time.perf_counter()
        self._request = 0.0
        self._current: Latency | None = None

    def key(self) -> None:
        self._key = time.perf_counter()

    def request(self, model: str, mode: str) -> None:
        self._request = time.perf_counter()
        self._current = Latency(model, mode, _ms(self._request - self._key))

    def visible(self) -> None:
        """The first token of the current request reached the screen (later calls are ignored)."""
        if self._current is not None and self._current.key_to_first_token_ms is None:
            now = time.perf_counter()
            self._current.key_to_first_token_ms = _ms(now - self._key)
            self._current.request_to_first_token_ms = _ms(now - self._request)

    def done(self, done: Done) -> None:
        record, self._current = self._current, None
        if record is None:
            return
        record.request_to_done_ms = _ms(time.perf_counter() - self._request)
        record.engine_ms = _ms(done.seconds)
        record.n_tokens, record.nfe, record.stop_reason = done.n_tokens, done.nfe, done.stop_reason
        record.mode = done.mode
        self.records.append(record)
        if self.path:
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(asdict(record)) + "\n")
            except OSError as e:  # a debugging aid must not break completion: stop logging, say why once
                self.path, self.error = None, f"${ENV}: {e.strerror or e}; latency logging is off"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
