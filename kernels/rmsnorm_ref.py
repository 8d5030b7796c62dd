"""Torch reference RMSNorm with the residual add folded in (as Ministral-3 computes it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rms_norm_ref(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (norm(x + residual) * weight, x + residual); the sum feeds the next residual."""
    if residual is not None:
        x = x + residual
    h = F.rms_norm(x.float(), (x.shape[-1],), eps=eps)  # normalise in fp32, weight in x's dtype
    return weight * h.to(x.dtype), x
