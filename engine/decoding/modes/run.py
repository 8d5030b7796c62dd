"""How every mode runs: one shared start, then the mode's own loop, looked up by name.

The start prefills what the cache does not hold yet with causal passes, picks the first token
from their logits, and continues in AR while a token-healing constraint is active (the
characters backed off from the prompt must be written again; only `DecodeState.pick_ar` applies
that constraint).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from engine.decoding.modes.ar import run_ar
from engine.decoding.modes.diffusion import run_diffusion
from engine.decoding.modes.self_spec import run_linear, run_quadratic
from engine.decoding.modes.state import DecodeState
from engine.events import Event

RUNS: dict[str, Callable[[DecodeState, int], Iterator[Event]]] = {
    "ar": run_ar,
    "diffusion": run_diffusion,
    "self-spec-linear": run_linear,
    "self-spec-quadratic": run_quadratic,
}


def run(ctx: DecodeState, mode: str, uncached: list[int]) -> Iterator[Event]:
    """Events of `mode` (a key of RUNS) after appending the `uncached` prompt tokens to the cache."""
    if ctx.cancelled():
        return
    first = yield from start(ctx, uncached)
    yield from RUNS[mode](ctx, first)


def start(ctx: DecodeState, uncached: list[int]) -> Iterator[Event]:
    """Prefill, the first token, and AR until token healing is done; returns the token to feed next."""
    first, conf = ctx.pick_ar(ctx.runner.extend(uncached))
    yield ctx.ar_step_event("prefill", first, conf)
    yield from ctx.emit([first])
    heal = ctx.seq.heal
    if heal is not None:
        first = yield from run_ar(ctx, first, until=lambda: not heal.active)
    return first
