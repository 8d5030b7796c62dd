"""Torch reference attention over [cached K/V + current chunk] for the engine's three patterns."""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F


class Pattern(str, Enum):
    CAUSAL = "causal"  # query i of the chunk sees the cache and chunk tokens 0..i
    BIDIRECTIONAL = "bidirectional"  # every query sees the cache and the whole chunk
    MASK = "mask"  # every query sees the cache; within the chunk an explicit [T, T] bool mask


def full_mask(
    pattern: Pattern, t: int, cache_len: int, mask: torch.Tensor | None, device
) -> torch.Tensor | None:
    """The [T, cache_len + T] boolean mask of `pattern`, or None when every key is visible. A
    Pattern.MASK mask that is already [T, cache_len + T] (built once per pass shape by the caller:
    `engine.model.masks`) is returned as it is."""
    if pattern is Pattern.BIDIRECTIONAL or (pattern is Pattern.CAUSAL and t == 1):
        return None
    if pattern is Pattern.MASK and mask is not None and mask.shape == (t, cache_len + t):
        return mask
    if pattern is Pattern.CAUSAL:
        chunk = torch.ones(t, t, dtype=torch.bool, device=device).tril()
    else:
        assert mask is not None and mask.shape == (t, t), "Pattern.MASK needs a [T, T] or [T, cache + T] mask"
        chunk = mask.to(device=device, dtype=torch.bool)
    if cache_len == 0:
        return chunk
    seen = torch.ones(t, cache_len, dtype=torch.bool, device=device)
    return torch.cat([seen, chunk], dim=1)


def attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cache_len: int,
    pattern: Pattern,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """q [B, Hq, T, D]; k, v [B, Hkv, cache_len + T, D] (the cache followed by the chunk).

    On a CPU, bf16/fp16 inputs are attended in fp32: torch's CPU attention is 3-5x slower in half
    precision at decode shapes (one query over 200 / 1,000 cached keys: 88 / 450 us in bf16,
    28 / 91 us in fp32 casts included; docs/BENCHMARKS.md), and about as fast for 8-72 queries.
    K and V may be fp32 already (the engine's CPU cache is).

    A single query with grouped KV heads is attended as one query row per head of its group over
    its KV head ([B, Hkv, group, D]), which is a view: cheaper than `enable_gqa` on a CPU."""
    b, hq, t, d = q.shape
    attn_mask = full_mask(pattern, t, cache_len, mask, q.device)
    hkv = k.shape[1]
    packed = t == 1 and hkv != hq
    if packed:
        q = q.view(b, hkv, hq // hkv, d)
    upcast = q.device.type == "cpu" and q.dtype != torch.float32
    qf, kf, vf = (q.float(), _fp32(k), _fp32(v)) if upcast else (q, k, v)
    out = F.scaled_dot_product_attention(
        qf, kf, vf, attn_mask=attn_mask, scale=scale, enable_gqa=hkv != hq and not packed
    )
    if upcast:
        out = out.to(q.dtype)
    return out.view(b, hq, t, d) if packed else out


def _fp32(t: torch.Tensor) -> torch.Tensor:
    """(An engine's CPU cache is fp32 already: `NLDModel.new_cache`.)"""
    return t if t.dtype == torch.float32 else t.float()
