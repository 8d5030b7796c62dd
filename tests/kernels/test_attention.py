"""Triton attention against the torch reference, under the interpreter, at tiny shapes.

Inputs are laid out as the engine passes them: q is the transpose of a [B, T, Hq, D] projection,
k/v are [cache + chunk] slices of a longer preallocated cache buffer.
"""

from __future__ import annotations

import pytest
import torch

from engine.decoding.modes.self_spec import quadratic_mask
from kernels.attention import attention_triton
from kernels.attention_ref import Pattern, attention_ref

TOL = {torch.float32: (2e-5, 1e-5), torch.float16: (2e-3, 2e-3), torch.bfloat16: (2e-2, 2e-2)}


def _inputs(b, hq, hkv, t, cache_len, dim, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, t, hq, dim, generator=g).to(dtype).transpose(1, 2)
    buf = torch.randn(2, b, hkv, cache_len + t + 5, dim, generator=g).to(dtype)  # + unused slots
    k, v = buf[0, :, :, : cache_len + t], buf[1, :, :, : cache_len + t]
    return q, k, v


def _mask(kind: str, t: int, seed: int = 0) -> torch.Tensor | None:
    if kind == "random":
        mask = torch.rand(t, t, generator=torch.Generator().manual_seed(seed)) < 0.3
        return mask | torch.eye(t, dtype=torch.bool)
    if kind.startswith("quadratic"):
        rows = int(kind.removeprefix("quadratic"))
        assert rows * (rows + 1) == t
        return quadratic_mask(rows)
    return None


def _check(pattern, hq, hkv, t, cache_len, dim=16, dtype=torch.float32, mask_kind="", b=1, **overrides):
    q, k, v = _inputs(b, hq, hkv, t, cache_len, dim, dtype)
    mask = _mask(mask_kind, t)
    out = attention_triton(q, k, v, cache_len, pattern, mask, **overrides)
    ref = attention_ref(q, k, v, cache_len, pattern, mask)
    assert out.shape == ref.shape and out.dtype == dtype
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(out, ref, atol=atol, rtol=rtol)


# (T, cache_len): one query, odd chunks, an empty cache, caches longer than one 16-key tile
# (cache_len 30: the unmasked prefix ends one key before a tile boundary).
SHAPES = [(1, 0), (1, 40), (3, 0), (3, 30), (33, 0), (17, 24)]
GQA = [(4, 4), (8, 2), (8, 1)]


@pytest.mark.parametrize("t,cache_len", SHAPES)
@pytest.mark.parametrize("hq,hkv", GQA)
@pytest.mark.parametrize("pattern", [Pattern.CAUSAL, Pattern.BIDIRECTIONAL])
def test_causal_and_bidirectional(pattern, hq, hkv, t, cache_len):
    _check(pattern, hq, hkv, t, cache_len, block_n=16, num_splits=1)


@pytest.mark.parametrize(
    "t,cache_len,kind",
    [
        (1, 0, "random"),
        (1, 20, "random"),
        (3, 0, "random"),
        (33, 31, "random"),
        (12, 0, "quadratic3"),
        (30, 20, "quadratic5"),
    ],
)
@pytest.mark.parametrize("hq,hkv", GQA)
def test_mask(hq, hkv, t, cache_len, kind):
    _check(Pattern.MASK, hq, hkv, t, cache_len, mask_kind=kind, block_n=16, num_splits=1)


@pytest.mark.parametrize(
    "pattern,kind", [(Pattern.CAUSAL, ""), (Pattern.BIDIRECTIONAL, ""), (Pattern.MASK, "random")]
)
@pytest.mark.parametrize("t,cache_len,splits", [(1, 50, 3), (1, 50, 4), (5, 40, 2), (3, 0, 2)])
def test_split_keys(pattern, kind, t, cache_len, splits):
    """Flash-decoding splits, including splits a causal tile never reaches and ragged last splits."""
    _check(pattern, 8, 2, t, cache_len, mask_kind=kind, block_n=16, num_splits=splits)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize(
    "pattern,kind,t,cache_len",
    [
        (Pattern.CAUSAL, "", 1, 30),
        (Pattern.CAUSAL, "", 9, 20),
        (Pattern.BIDIRECTIONAL, "", 5, 27),
        (Pattern.MASK, "quadratic3", 12, 17),
    ],
)
def test_dtypes_head_dim_64(dtype, pattern, kind, t, cache_len):
    _check(pattern, 4, 1, t, cache_len, dim=64, dtype=dtype, mask_kind=kind, block_n=16)


@pytest.mark.parametrize("dim", [32, 128])
def test_other_head_dims_and_batch(dim):
    _check(Pattern.CAUSAL, 4, 2, 5, 11, dim=dim, b=2, block_n=16, num_splits=2)


def test_default_tiles_and_scale():
    """The heuristic tile sizes (a 128-row tile over packed heads, 64-key tiles) and a custom scale."""
    q, k, v = _inputs(1, 8, 2, 33, 70, 16, torch.float32)
    out = attention_triton(q, k, v, 70, Pattern.CAUSAL, scale=0.3)
    torch.testing.assert_close(
        out, attention_ref(q, k, v, 70, Pattern.CAUSAL, scale=0.3), atol=2e-5, rtol=1e-5
    )


def test_output_is_a_transposed_token_major_buffer():
    """The engine's `.transpose(1, 2).reshape(B, T, -1)` must not copy."""
    q, k, v = _inputs(1, 4, 2, 3, 5, 16, torch.float32)
    out = attention_triton(q, k, v, 5, Pattern.BIDIRECTIONAL)
    assert out.transpose(1, 2).is_contiguous()


def test_fully_masked_rows_give_zero_like_sdpa():
    q, k, v = _inputs(1, 2, 2, 3, 0, 16, torch.float32)
    mask = torch.tensor([[True, False, False], [False, False, False], [True, True, True]])
    out = attention_triton(q, k, v, 0, Pattern.MASK, mask, block_n=16)
    torch.testing.assert_close(out, attention_ref(q, k, v, 0, Pattern.MASK, mask), atol=2e-5, rtol=1e-5)
    assert out[:, :, 1].abs().max() == 0
