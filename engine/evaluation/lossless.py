"""What counts as lossless: self-speculation's output equals AR greedy, up to floating-point ties.

A verify pass scores B tokens in one matmul and AR scores one, so their sums run in different
orders and round differently. Where AR's top two logits are closer than that rounding, either
pass may pick either token, and the outputs part there without anything being wrong; any other
difference is a bug. The tie margin scales with the logits' magnitude and the weights' dtype (in
bf16 a logit near 12 is rounded to steps of 1/16).
"""

from __future__ import annotations

import torch

TIE_EPS = (
    2  # a tie: top-2 gap within this many machine epsilons of the top logit (2-4 units in the last place)
)


def first_difference(a: list[int], b: list[int]) -> int | None:
    """The first index where two token lists differ (a stop in one counts), or None if they are equal."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def parted_at_tie(
    engine, prompt_ids: list[int], ar: list[int], other: list[int], tol: float | None = None
) -> bool:
    """Do `other` and the AR greedy output `ar` agree up to a point where AR's own choice was a tie
    (top-2 logit gap below `tol`, by default the rounding margin of the model's dtype)?"""
    i = first_difference(ar, other)
    if i is None:
        return True
    engine.runner.crop(0)
    logits = engine.runner.extend(prompt_ids + ar[:i])
    mask_id = engine.tokenizer.mask_id
    if mask_id is not None:  # never a pick, so never one side of a tie
        logits = logits.index_fill(-1, torch.tensor([mask_id], device=logits.device), float("-inf"))
    top = logits.topk(2).values.float()
    if tol is None:
        dtype = next(engine.model.parameters()).dtype
        tol = TIE_EPS * torch.finfo(dtype).eps * max(1.0, float(top[0].abs()))
    return float(top[0] - top[1]) < tol
