"""Triton fused SwiGLU: silu(gate) * up in one pass (eager torch writes and rereads silu(gate)).

Semantics are `kernels.swiglu_ref.swiglu_ref`, rounding included: silu is computed in fp32 and
rounded to the input dtype before the product, as the two eager torch ops do. gate and up may
be row-strided views (the two halves of the engine's fused gate/up projection): no copy.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.launch import rows_view

_BLOCK = 1024


@triton.jit
def _swiglu_fwd(G, U, Out, sg, su, so, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ok = cols < n_cols
    g = tl.load(G + row * sg + cols, mask=ok, other=0.0)
    u = tl.load(U + row * su + cols, mask=ok, other=0.0)
    gf = g.to(tl.float32)
    silu = (gf / (1.0 + tl.exp(-gf))).to(g.dtype)
    tl.store(
        Out + row * so + cols, (silu.to(tl.float32) * u.to(tl.float32)).to(Out.dtype.element_ty), mask=ok
    )


def swiglu_triton(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """gate, up [..., I] of one shape and dtype (any row strides) -> silu(gate) * up, contiguous."""
    assert gate.shape == up.shape and gate.dtype == up.dtype, "gate and up must share shape and dtype"
    out = torch.empty(gate.shape, device=gate.device, dtype=gate.dtype)
    if out.numel() == 0:
        return out
    g2, u2, o2 = rows_view(gate), rows_view(up), out.view(-1, gate.shape[-1])
    n_cols = o2.shape[1]
    _swiglu_fwd[(o2.shape[0], triton.cdiv(n_cols, _BLOCK))](
        g2,
        u2,
        o2,
        g2.stride(0),
        u2.stride(0),
        o2.stride(0),
        n_cols,
        BLOCK=_BLOCK,
        num_warps=4,
    )
    return out
