"""Triton fused residual + RMSNorm against the torch reference, under the interpreter."""

from __future__ import annotations

import pytest
import torch

from kernels.rmsnorm import rms_norm_triton
from kernels.rmsnorm_ref import rms_norm_ref


@pytest.mark.parametrize("hidden", [64, 48])  # 48: a row narrower than its power-of-two block
@pytest.mark.parametrize("with_residual", [False, True])
@pytest.mark.parametrize(
    "dtype,weight_dtype",
    [
        (torch.float32, torch.float32),
        (torch.bfloat16, torch.bfloat16),
        (torch.float16, torch.float16),
        (torch.bfloat16, torch.float32),
    ],
)
def test_matches_reference(dtype, weight_dtype, with_residual, hidden):
    g = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(2, 5, hidden, generator=g)).to(dtype)
    residual = torch.randn(2, 5, hidden, generator=g).to(dtype) if with_residual else None
    weight = (1 + 0.1 * torch.randn(hidden, generator=g)).to(weight_dtype)
    out, total = rms_norm_triton(x, weight, 1e-5, residual)
    ref_out, ref_total = rms_norm_ref(x, weight, 1e-5, residual)
    assert out.dtype == ref_out.dtype and total.dtype == ref_total.dtype
    # fp16 is bit-exact (every rounding step as torch's; these inputs keep the fp32 statistics'
    # summation order out of it). The interpreter rounds fp32 -> bf16 by truncation (the GPU
    # rounds to nearest even): allow one rounding step there.
    tol = {torch.float32: (1e-6, 1e-5), torch.float16: (0, 0), torch.bfloat16: (2e-2, 8e-3)}[dtype]
    torch.testing.assert_close(total, ref_total, atol=tol[0], rtol=tol[1])
    torch.testing.assert_close(out, ref_out, atol=tol[0], rtol=tol[1])
    if residual is None:
        assert total is x


def test_strided_rows():
    """Rows of a wider buffer (last dim contiguous) need no copy."""
    g = torch.Generator().manual_seed(1)
    buf = torch.randn(4, 96, generator=g)
    x, weight = buf[:, :64], torch.randn(64, generator=g)
    out, _ = rms_norm_triton(x, weight, 1e-6)
    torch.testing.assert_close(out, rms_norm_ref(x, weight, 1e-6)[0], atol=1e-6, rtol=1e-5)


def test_reference_trains_after_an_inference_pass():
    """Its constants are made once, by whichever call comes first: an inference-mode one must not
    make them tensors autograd refuses."""
    x, w = torch.randn(2, 24), torch.randn(24)
    with torch.inference_mode():
        rms_norm_ref(x, w, 1e-5 / 3)
    w.requires_grad_(True)
    rms_norm_ref(x, w, 1e-5 / 3)[0].sum().backward()
    assert w.grad is not None


@pytest.mark.parametrize("width", [64, 96, 3072])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reference_equals_transformers_formula_bit_for_bit(width, dtype):
    """Ministral-3's norm as transformers writes it (mean of squares + eps, rsqrt, weight times the
    rounded result): the reference's sum-and-addcdiv form must not change a bit."""
    g = torch.Generator().manual_seed(width)
    x, r = (torch.randn(5, width, generator=g).mul(30).to(dtype) for _ in range(2))
    w = torch.randn(width, generator=g).to(dtype)
    h = (x + r).float()
    want = w * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5)).to(dtype)
    assert torch.equal(rms_norm_ref(x, w, 1e-5, r)[0], want)
