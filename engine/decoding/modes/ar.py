"""Autoregressive decoding: one causal forward per token, appending to the cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from engine.decoding.modes.state import DecodeState
from engine.events import Event


def run_ar(ctx: DecodeState, tok: int, until: Callable[[], bool] = lambda: False) -> Iterator[Event]:
    """Feed the committed token `tok` and continue token by token; returns the last token
    produced (not yet in the cache) so another mode can take over when `until()` holds."""
    while ctx.running and not until():
        logits = ctx.runner.extend([tok])
        ctx.seq.nfe += 1
        tok, conf = ctx.pick_ar(logits)
        yield ctx.ar_step_event("ar", tok, conf)
        event = ctx.seq.commit([tok])  # `ctx.emit`, without a generator per token
        if event is not None:
            yield event
    return tok
