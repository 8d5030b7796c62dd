"""Helpers for engine tests."""

from __future__ import annotations


def run(eng, **kw):
    """Generate and return (events, done)."""
    from engine import Done, GenerationConfig, Request

    fields = {k: kw.pop(k) for k in ("prompt", "prefix", "suffix") if k in kw}
    events = list(eng.generate(Request(config=GenerationConfig(**kw), **fields)))
    assert isinstance(events[-1], Done)
    return events, events[-1]
