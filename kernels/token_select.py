"""Triton commit-step kernels: argmax + its softmax probability in one pass, and the accept length.

`argmax_confidence_triton` reads each logit once: every lane keeps a running max, the index of
its first occurrence and the sum of exp relative to that max (online softmax), so no fp32
[R, V] temporary is ever made. The mask id is skipped while scanning (it is never chosen) and its
exp is added to the sum at the end, so the confidence of the argmax, exp(0) / sum = 1 / sum, is its
probability under the full-vocabulary softmax, as NVIDIA's rule has it. Long rows
are split across programs (few rows would otherwise leave most of the GPU idle) and the
partial (max, sum, index) triples are merged by a second tiny kernel.
Ties go to the lowest index, as `torch.max` does.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.launch import rows_view, split_count

_LOG2E = tl.constexpr(1.4426950408889634)
_BLOCK_V = 2048


@triton.jit
def _argmax_conf_partial(
    L,
    sl,
    V,
    span,
    mask_id,
    PMax,
    PSum,
    PIdx,
    Ids,
    Conf,
    BLOCK: tl.constexpr,
    FINAL: tl.constexpr,
):
    """One (row, vocabulary span) program; FINAL (a single span) writes ids/conf directly."""
    row, split = tl.program_id(0), tl.program_id(1)
    lo = split * span
    hi = tl.minimum(lo + span, V)
    lanes = tl.arange(0, BLOCK)
    best = tl.full([BLOCK], float("-inf"), tl.float32)
    total = tl.zeros([BLOCK], tl.float32)
    idx = tl.full([BLOCK], 2147483647, tl.int32)
    for start in range(lo, hi, BLOCK):
        cols = start + lanes
        x = tl.load(L + row * sl + cols, mask=cols < hi, other=float("-inf")).to(tl.float32)
        x = tl.where(cols == mask_id, float("-inf"), x)
        idx = tl.where(x > best, cols, idx)  # strict: a lane keeps the first index of its max
        new_best = tl.maximum(best, x)
        ref = tl.where(new_best == float("-inf"), 0.0, new_best)  # lanes that saw only -inf
        total = total * tl.math.exp2((best - ref) * _LOG2E) + tl.math.exp2((x - ref) * _LOG2E)
        best = new_best
    m = tl.max(best, 0)
    m_ref = tl.where(m == float("-inf"), 0.0, m)
    s = tl.sum(total * tl.math.exp2((best - m_ref) * _LOG2E), 0)
    i = tl.min(tl.where(best == m, idx, 2147483647), 0)
    if FINAL:
        tl.store(Ids + row, i.to(tl.int64))
        tl.store(Conf + row, 1.0 / _plus_mask_term(s, m_ref, L + row * sl, mask_id))
    else:
        n_splits = tl.num_programs(1)
        tl.store(PMax + row * n_splits + split, m)
        tl.store(PSum + row * n_splits + split, s)
        tl.store(PIdx + row * n_splits + split, i)


@triton.jit
def _plus_mask_term(s, m_ref, row_ptr, mask_id):
    """The softmax denominator `s` (relative to `m_ref`, mask skipped) with the mask id's exp added."""
    x = tl.load(row_ptr + tl.maximum(mask_id, 0)).to(tl.float32)
    return s + tl.where(mask_id >= 0, tl.math.exp2((x - m_ref) * _LOG2E), 0.0)


@triton.jit
def _argmax_conf_merge(
    L, sl, mask_id, PMax, PSum, PIdx, Ids, Conf, SPLITS: tl.constexpr, BLOCK_S: tl.constexpr
):
    row = tl.program_id(0)
    s = tl.arange(0, BLOCK_S)
    ok = s < SPLITS
    best = tl.load(PMax + row * SPLITS + s, mask=ok, other=float("-inf"))
    total = tl.load(PSum + row * SPLITS + s, mask=ok, other=0.0)
    idx = tl.load(PIdx + row * SPLITS + s, mask=ok, other=2147483647)
    m = tl.max(best, 0)
    m_ref = tl.where(m == float("-inf"), 0.0, m)
    total = tl.sum(total * tl.math.exp2((best - m_ref) * _LOG2E), 0)
    tl.store(Ids + row, tl.min(tl.where(best == m, idx, 2147483647), 0).to(tl.int64))
    tl.store(Conf + row, 1.0 / _plus_mask_term(total, m_ref, L + row * sl, mask_id))


def argmax_confidence_triton(
    logits: torch.Tensor, mask_id: int | None, *, num_splits: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [..., V] (fp32/bf16/fp16) -> (ids int64 [...], conf fp32 [...]), `mask_id` never chosen
    but inside the softmax that `conf` is taken from.

    `num_splits` overrides how many programs share a row (tests use it at tiny shapes).
    """
    vocab = logits.shape[-1]
    lead = logits.shape[:-1]
    rows = rows_view(logits)
    n_rows = rows.shape[0]
    ids = torch.empty(n_rows, device=logits.device, dtype=torch.int64)
    conf = torch.empty(n_rows, device=logits.device, dtype=torch.float32)
    if n_rows == 0:
        return ids.view(lead), conf.view(lead)
    block = min(_BLOCK_V, triton.next_power_of_2(vocab))
    if num_splits is None:
        num_splits = split_count(n_rows, triton.cdiv(vocab, block), 4, logits.device)
    span = triton.cdiv(triton.cdiv(vocab, num_splits), block) * block
    num_splits = triton.cdiv(vocab, span)
    final = num_splits == 1
    part = (
        [
            torch.empty(n_rows, num_splits, device=logits.device, dtype=dt)
            for dt in (torch.float32, torch.float32, torch.int32)
        ]
        if not final
        else [conf, conf, conf]
    )
    mask = -1 if mask_id is None else mask_id
    _argmax_conf_partial[(n_rows, num_splits)](
        rows,
        rows.stride(0),
        vocab,
        span,
        mask,
        *part,
        ids,
        conf,
        BLOCK=block,
        FINAL=final,
        num_warps=8,
    )
    if not final:
        _argmax_conf_merge[(n_rows,)](
            rows,
            rows.stride(0),
            mask,
            *part,
            ids,
            conf,
            SPLITS=num_splits,
            BLOCK_S=triton.next_power_of_2(num_splits),
            num_warps=1,
        )
    return ids.view(lead), conf.view(lead)


@triton.jit
def _accept_length(D, Tg, sd, st, n, Out, BLOCK: tl.constexpr):
    first = tl.zeros([], tl.int32) + n
    for start in range(0, n, BLOCK):
        i = start + tl.arange(0, BLOCK)
        ok = i < n
        differ = tl.load(D + i * sd, mask=ok) != tl.load(Tg + i * st, mask=ok)
        first = tl.minimum(first, tl.min(tl.where(ok & differ, i, n), 0))
    tl.store(Out, first)


def accept_length_triton(draft: torch.Tensor, target: torch.Tensor) -> int:
    """Number of leading positions where draft equals target (both 1-D, same length)."""
    assert draft.dim() == 1 and draft.shape == target.shape, "draft and target must be 1-D of one length"
    n = draft.numel()
    out = torch.empty(1, device=draft.device, dtype=torch.int32)
    _accept_length[(1,)](
        draft,
        target,
        draft.stride(0),
        target.stride(0),
        n,
        out,
        BLOCK=min(1024, max(16, triton.next_power_of_2(n))),
        num_warps=1,
    )
    return int(out.item())
