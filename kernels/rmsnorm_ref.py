"""Torch reference RMSNorm with the residual add folded in (as Ministral-3 computes it)."""

from __future__ import annotations

import functools
from typing import Optional

import torch


def rms_norm_ref(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (norm(x + residual) * weight, x + residual); the sum feeds the next residual.

    The mean square is a sum divided by the width (on a CPU torch's `mean`, and so `F.rms_norm`,
    costs an order of magnitude more than `sum` for the few rows of a decode pass:
    docs/BENCHMARKS.md), and `eps + sum / width` is one `addcdiv` (a fused multiply-add of 1 and
    the quotient rounds as the division then the addition do: equal to `mean + eps` bit for bit)."""
    eps_t, width = _constants(eps, x.shape[-1], x.device)
    return rms_norm_with(x, weight, eps_t, width, residual)


def rms_norm_with(
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: torch.Tensor,
    width: torch.Tensor,
    residual: Optional[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """`rms_norm_ref` with eps and the width as tensors: TorchScript compiles it as it is
    (engine/model/decode_step.py calls it from its scripted pass)."""
    if residual is not None:
        x = x + residual
    fp32 = x.dtype == torch.float32  # (a no-op `.to` still costs a dispatch)
    xf = x if fp32 else x.float()  # normalise in fp32, weight in x's dtype
    h = xf * torch.addcdiv(eps, xf.square().sum(-1, keepdim=True), width).rsqrt_()
    return weight * (h if fp32 else h.to(x.dtype)), x


@functools.cache
def _constants(eps: float, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode(False):  # made by a decode step, used by training too
        return torch.tensor(eps, device=device), torch.tensor(float(width), device=device)
