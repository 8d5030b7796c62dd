"""nemodiff's headless engine: NLD models in AR, block-diffusion and self-speculation modes.

    import engine
    eng = engine.load("demo")                      # a directory, a Hugging Face repo id, or "demo"
    req = engine.Request(prefix="def add(a, b):\n    ", suffix="\n",
                         config=engine.GenerationConfig(mode="self-spec"))
    for event in eng.generate(req):                # Note / Step / Commit / Done events
        ...

`engine` and `kernels` never import the UI (`textual`, `nemodiff_tui`).

Importing `engine` (or `engine.request`, `engine.events`, ...) does not import torch: `Engine`
and `Generation` load it when first used, so the CLI's settings and the editor's first frame
do not wait for it (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import CheckpointError, NemodiffError, RequestError
from engine.events import Commit, Done, Event, Note, Step
from engine.request import GenerationConfig, Request

if TYPE_CHECKING:
    from engine.decoding.engine import Engine, Generation


def __getattr__(name: str):
    """`engine.Engine` and `engine.Generation`, imported (with torch) on first use."""
    if name in ("Engine", "Generation"):
        from engine.decoding import engine as decoding_engine

        return getattr(decoding_engine, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def load(model: str = "demo", device: str = "auto", dtype=None, progress=None) -> Engine:
    """Load a checkpoint (NLD natively, any other causal LM through transformers) as an Engine."""
    from engine.decoding.engine import Engine
    from engine.loading.checkpoint import load_model

    return Engine(load_model(model, device=device, dtype=dtype, progress=progress))


__all__ = [
    "load",
    "Engine",
    "Generation",
    "GenerationConfig",
    "Request",
    "Event",
    "Note",
    "Step",
    "Commit",
    "Done",
    "NemodiffError",
    "CheckpointError",
    "RequestError",
]
