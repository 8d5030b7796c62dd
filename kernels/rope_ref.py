"""Torch reference rotary embedding (half-rotation layout) with the position-dependent query scale."""

from __future__ import annotations

import torch


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_ref(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, q_scale: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """q [B, Hq, T, D], k [B, Hkv, T, D]; cos, sin [T, D]; q_scale [T], or None where it is 1 (every
    position below the original context: `engine.model.rope.Rotary`). Returns rotated (q, k)."""
    cos, sin = cos.to(q.dtype), sin.to(q.dtype)
    q = q * cos + _rotate_half(q) * sin
    if q_scale is not None:
        q = q * q_scale.to(q.dtype)[:, None]
    k = k * cos + _rotate_half(k) * sin
    return q, k


def signed_sin(sin: torch.Tensor) -> torch.Tensor:
    """`sin` [T, D] with its first half negated: what `rope_packed` multiplies the rolled heads by."""
    return torch.cat((-sin[:, : sin.shape[-1] // 2], sin[:, sin.shape[-1] // 2 :]), dim=-1)


def rope_packed(heads: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    """q and k heads together [B, Hq + Hkv, T, D] (cos, `signed_sin(sin)` [T, D], in the heads'
    dtype), rotated without the query scale: four ops for both, where `rope_ref` takes fourteen.
    Equal to `rope_ref` bit for bit: rolling by half a head and multiplying by the signed sine is
    `_rotate_half(x) * sin` (a negation is exact), and the sum is taken in the same order."""
    return heads * cos + heads.roll(heads.shape[-1] // 2, -1) * sin_signed
