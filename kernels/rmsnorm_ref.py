"""Torch reference RMSNorm with the residual add folded in (as Ministral-3 computes it)."""

from __future__ import annotations

import torch


def rms_norm_ref(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (norm(x + residual) * weight, x + residual); the sum feeds the next residual.

    The mean square is a sum divided by the width: on a CPU torch's `mean` (and so `F.rms_norm`)
    costs an order of magnitude more than `sum` for the few rows of a decode pass (docs/BENCHMARKS.md)."""
    if residual is not None:
        x = x + residual
    fp32 = x.dtype == torch.float32  # (a no-op `.to` still costs a dispatch)
    xf = x if fp32 else x.float()  # normalise in fp32, weight in x's dtype
    h = xf * torch.rsqrt(xf.square().sum(-1, keepdim=True).div_(x.shape[-1]).add_(eps))
    return weight * (h if fp32 else h.to(x.dtype)), x
