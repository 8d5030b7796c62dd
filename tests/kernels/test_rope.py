"""Triton rotary embedding against the torch reference, under the interpreter."""

from __future__ import annotations

import pytest
import torch

from engine.model.config import preset
from engine.model.rope import Rotary
from kernels.rope import rope_triton
from kernels.rope_ref import rope_ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("hq,hkv,t,dim", [(4, 2, 3, 16), (8, 1, 1, 64), (3, 3, 5, 32)])
def test_matches_reference_in_place(dtype, hq, hkv, t, dim):
    """q/k are transposes of [B, T, H, D] projections, as the engine passes them; rotated in place."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, t, hq, dim, generator=g).to(dtype).transpose(1, 2)
    k = torch.randn(2, t, hkv, dim, generator=g).to(dtype).transpose(1, 2)
    positions = torch.arange(40_000, 40_000 + t) if t > 1 else torch.tensor([7])
    cfg = preset("tiny")
    cfg.head_dim = dim
    cos, sin, q_scale = Rotary(cfg, torch.device("cpu"))(positions)
    q_scale = q_scale + 0.25 * torch.arange(t)  # make the per-token scale visible
    ref_q, ref_k = rope_ref(q.clone(), k.clone(), cos, sin, q_scale)
    out_q, out_k = rope_triton(q, k, cos, sin, q_scale)
    assert out_q is q and out_k is k
    # Every intermediate is rounded as torch rounds it, so fp16 is bit-exact; fp32 may differ by
    # fused multiply-adds; the interpreter truncates fp32 -> bf16 (the GPU rounds to nearest even).
    tol = {
        torch.float32: dict(atol=1e-6, rtol=1e-6),
        torch.float16: dict(atol=0, rtol=0),
        torch.bfloat16: dict(atol=2e-2, rtol=2e-2),
    }[dtype]
    torch.testing.assert_close(q, ref_q, **tol)
    torch.testing.assert_close(k, ref_k, **tol)
