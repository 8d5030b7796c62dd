"""What the app needs from an engine, and how it gets one: the seam where tests inject a fake.

The app never imports `engine.decoding.engine` directly; it calls an `EngineFactory(model, progress)` in a
worker thread. The real factory is `engine.load`; tests pass one returning a recorded engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.events import MASKED
from engine.request import GenerationConfig, Request

Progress = Callable[[int, int, str], None]  # done, total, tensor name


class Generation(Protocol):
    def __iter__(self): ...

    def cancel(self) -> None: ...


class Tokenizer(Protocol):
    special_ids: frozenset[int]

    def decode(self, ids: list[int]) -> str: ...


class CompletionEngine(Protocol):
    """The part of `engine.Engine` the app uses."""

    name: str
    tokenizer: Tokenizer

    def generate(self, request: Request) -> Generation: ...

    def resolve_mode(self, config: GenerationConfig) -> tuple[str, list[str]]: ...


EngineFactory = Callable[[str, Progress], CompletionEngine]


def engine_factory(
    device: str = "auto", dtype: str | None = None, backend: str | None = None, api_key: str | None = None
) -> EngineFactory:
    """Load checkpoints with `engine.load` on `device` in `dtype`, or, with a `backend` URL,
    connect to an OpenAI-compatible server (`nemodiff serve`, SGLang) instead."""

    def load(model: str, progress: Progress) -> CompletionEngine:
        if backend:
            from engine.decoding.remote import connect

            return connect(backend, api_key=api_key)
        import engine

        return engine.load(model, device=device, dtype=dtype, progress=progress)

    return load


class TokenTexts:
    """The text of single tokens for the denoising grid, decoded once per id."""

    def __init__(self, tokenizer: Tokenizer):
        self._tokenizer = tokenizer
        self._texts: dict[int, str] = {MASKED: ""}

    def __call__(self, ids: list[int]) -> tuple[str, ...]:
        for i in ids:
            if i not in self._texts:
                self._texts[i] = self._tokenizer.decode([i])
        return tuple(self._texts[i] for i in ids)
