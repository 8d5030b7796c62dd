"""Triton fused residual add + RMSNorm, one program per row.

Semantics are `kernels.rmsnorm_ref.rms_norm_ref`, rounding included: the sum is rounded to its
dtype, the statistics are fp32, the normalised row is rounded to the input dtype and only then
multiplied by the weight in the promoted dtype. Fusing saves a round trip of the residual stream.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.launch import rows_view


@triton.jit
def _rms_norm_fwd(X, R, W, Out, Sum, sx, sr, so, ss, H, eps, HAS_RESIDUAL: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    ok = cols < H
    x = tl.load(X + row * sx + cols, mask=ok, other=0.0)
    if HAS_RESIDUAL:
        r = tl.load(R + row * sr + cols, mask=ok, other=0.0)
        x = (x.to(tl.float32) + r.to(tl.float32)).to(Sum.dtype.element_ty)
        tl.store(Sum + row * ss + cols, x, mask=ok)
    h = x.to(tl.float32)
    rstd = tl.math.rsqrt(tl.sum(h * h, 0) / H + eps)
    normed = (h * rstd).to(x.dtype).to(tl.float32)
    w = tl.load(W + cols, mask=ok, other=0.0).to(tl.float32)
    tl.store(Out + row * so + cols, (normed * w).to(Out.dtype.element_ty), mask=ok)


def rms_norm_triton(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (norm(x + residual) * weight, x + residual); without a residual the second is x itself."""
    hidden = x.shape[-1]
    x2 = rows_view(x)
    if residual is None:
        total, r2, total2 = x, x2, x2  # r2 is never read
    else:
        assert residual.shape == x.shape, "the residual must have x's shape"
        total = torch.empty(x.shape, device=x.device, dtype=torch.promote_types(x.dtype, residual.dtype))
        r2, total2 = rows_view(residual), total.view(-1, hidden)
    out = torch.empty(x.shape, device=x.device, dtype=torch.promote_types(weight.dtype, total.dtype))
    out2 = out.view(-1, hidden)
    block = triton.next_power_of_2(hidden)
    _rms_norm_fwd[(x2.shape[0],)](
        x2,
        r2,
        weight.contiguous(),
        out2,
        total2,
        x2.stride(0),
        r2.stride(0),
        out2.stride(0),
        total2.stride(0),
        hidden,
        eps,
        HAS_RESIDUAL=residual is not None,
        BLOCK=block,
        num_warps=max(1, min(16, block // 512)),
    )
    return out, total
