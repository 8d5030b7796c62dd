"""Helpers for engine tests."""

from __future__ import annotations


def run(eng, **kw):
    """Generate and return (events, done)."""
    from engine import Done, GenerationConfig, Request

    fields = {k: kw.pop(k) for k in ("prompt", "prefix", "suffix") if k in kw}
    events = list(eng.generate(Request(config=GenerationConfig(**kw), **fields)))
    assert isinstance(events[-1], Done)
    return events, events[-1]


def first_divergence_is_tie(eng, prompt_ids: list[int], a: list[int], b: list[int], tol: float = 1e-5) -> bool:
    """Where two greedy outputs first differ, was the AR choice a floating-point tie (top-2 gap < tol)?"""
    i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    eng.runner.crop(0)
    logits = eng.runner.extend(prompt_ids + a[:i])
    top = logits.topk(2).values
    return float(top[0] - top[1]) < tol
