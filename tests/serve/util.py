"""Helpers for the server tests: run an app on loopback, read server-sent events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from engine.events import Done


@contextmanager
def serving(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def sse(lines: Iterator[str]) -> list:
    """The payloads of a server-sent-event stream: JSON objects, and the `[DONE]` marker as is."""
    out = []
    for line in lines:
        if line.startswith("data: "):
            body = line[len("data: ") :]
            out.append(body if body == "[DONE]" else json.loads(body))
    return out


def wait_for(predicate, timeout: float = 5.0) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Recording:
    """The engine, keeping how each generation ended (its Done) so tests can see cancellations."""

    def __init__(self, engine):
        self.engine = engine
        self.name = engine.name
        self.tokenizer = engine.tokenizer
        self.context_window = engine.context_window
        self.validate = engine.validate
        self.dones: list[Done] = []

    def generate(self, request):
        return RecordedGeneration(self.engine.generate(request), self.dones)


class RecordedGeneration:
    def __init__(self, generation, dones: list[Done]):
        self.generation = generation
        self.dones = dones

    def __iter__(self):
        for event in self.generation:
            if isinstance(event, Done):
                self.dones.append(event)
            yield event

    def cancel(self) -> None:
        self.generation.cancel()
