"""The torch path's packed rotary (q and k heads in one set of ops) against the reference, bit for bit."""

from __future__ import annotations

import pytest
import torch

from engine.model.config import preset
from engine.model.rope import Rotary
from kernels.rope_ref import rope_packed, rope_ref, signed_sin


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("hq,hkv,t,dim", [(4, 2, 3, 16), (8, 1, 1, 64)])
def test_packed_rotation_equals_the_reference_exactly(dtype, hq, hkv, t, dim):
    g = torch.Generator().manual_seed(0)
    heads = torch.randn(2, t, hq + hkv, dim, generator=g).to(dtype).transpose(1, 2)  # as the model lays them
    cfg = preset("tiny")
    cfg.head_dim = dim
    cos, sin, _ = Rotary(cfg, torch.device("cpu"))(torch.arange(40_000, 40_000 + t))
    cos, sin = cos.to(dtype), sin.to(dtype)
    ref_q, ref_k = rope_ref(heads[:, :hq], heads[:, hq:], cos, sin, None)
    q, k = rope_packed(heads, cos, signed_sin(sin)).split([hq, hkv], 1)
    assert torch.equal(q, ref_q) and torch.equal(k, ref_k)
