"""Torch reference attention over [cached K/V + current chunk] for the engine's three patterns."""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F


class Pattern(str, Enum):
    CAUSAL = "causal"  # query i of the chunk sees the cache and chunk tokens 0..i
    BIDIRECTIONAL = "bidirectional"  # every query sees the cache and the whole chunk
    MASK = "mask"  # every query sees the cache; within the chunk an explicit [T, T] bool mask


def full_mask(pattern: Pattern, t: int, cache_len: int, mask: torch.Tensor | None, device) -> torch.Tensor | None:
    """The [T, cache_len + T] boolean mask of `pattern`, or None when every key is visible."""
    if pattern is Pattern.BIDIRECTIONAL or (pattern is Pattern.CAUSAL and t == 1):
        return None
    if pattern is Pattern.CAUSAL:
        chunk = torch.ones(t, t, dtype=torch.bool, device=device).tril()
    else:
        assert mask is not None and mask.shape == (t, t), "Pattern.MASK needs a [T, T] mask"
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
    """q [B, Hq, T, D]; k, v [B, Hkv, cache_len + T, D] (the cache followed by the chunk)."""
    t = q.shape[2]
    attn_mask = full_mask(pattern, t, cache_len, mask, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=scale, enable_gqa=k.shape[1] != q.shape[1])
