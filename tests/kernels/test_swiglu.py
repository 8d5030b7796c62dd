"""Triton SwiGLU against the torch reference, under the interpreter."""

from __future__ import annotations

import pytest
import torch

from kernels.swiglu import swiglu_triton
from kernels.swiglu_ref import swiglu_ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_matches_reference(dtype):
    g = torch.Generator().manual_seed(0)
    gate = (4 * torch.randn(3, 5, 700, generator=g)).to(dtype)  # 10500 elements: a ragged last block
    up = torch.randn(3, 5, 700, generator=g).to(dtype)
    out, ref = swiglu_triton(gate, up), swiglu_ref(gate, up)
    # Rounded in torch's order, fp16 is bit-exact but where exp() differs by an fp32 ulp; the
    # interpreter truncates fp32 -> bf16 (the GPU rounds to nearest even).
    tol = {
        torch.float32: dict(atol=1e-6, rtol=1e-6),
        torch.float16: dict(atol=1e-3, rtol=1e-3),
        torch.bfloat16: dict(atol=1e-2, rtol=1.6e-2),
    }[dtype]
    torch.testing.assert_close(out, ref, **tol)
    if dtype == torch.float16:
        assert (out != ref).float().mean() < 1e-3


def test_halves_of_a_fused_projection():
    """The engine's fused gate/up matmul hands over two row-strided halves of one buffer."""
    fused = torch.randn(2, 3, 2 * 1500, generator=torch.Generator().manual_seed(1))
    gate, up = fused.chunk(2, dim=-1)
    out = swiglu_triton(gate, up)
    assert out.is_contiguous()
    torch.testing.assert_close(out, swiglu_ref(gate, up), atol=1e-6, rtol=1e-6)
