"""Triton rotary embedding (half-rotation layout) with the query scale, in place on q and k.

Semantics are `kernels.rope_ref.rope_ref`, rounding included: every product and sum is rounded
to the input dtype in the reference's order, so bf16 results match bit for bit. One program per
(batch, token) rotates all query and key heads of that token, reading cos/sin/scale once.
In place, so the transposed views of the q/k projections need no copy.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _round(x, dtype: tl.constexpr):
    """x rounded to `dtype` and back to fp32 (what one eager torch op in `dtype` does)."""
    return x.to(dtype).to(tl.float32)


@triton.jit
def _rotate(
    X,
    sb,
    sh,
    st,
    sd,
    b,
    t,
    n_heads,
    c1,
    c2,
    s1,
    s2,
    scale,
    HALF: tl.constexpr,
    BLOCK_H: tl.constexpr,
    SCALED: tl.constexpr,
):
    h = tl.arange(0, BLOCK_H)
    d = tl.arange(0, HALF)
    ptr = X + b * sb + t * st + h[:, None] * sh + d[None, :] * sd
    ok = (h < n_heads)[:, None]
    x1 = tl.load(ptr, mask=ok, other=0.0)
    x2 = tl.load(ptr + HALF * sd, mask=ok, other=0.0)
    dt: tl.constexpr = X.dtype.element_ty
    x1, x2 = x1.to(tl.float32), x2.to(tl.float32)
    o1 = _round(_round(x1 * c1[None, :], dt) - _round(x2 * s1[None, :], dt), dt)  # x*cos + (-x2)*sin
    o2 = _round(_round(x2 * c2[None, :], dt) + _round(x1 * s2[None, :], dt), dt)  # x*cos + x1*sin
    if SCALED:
        o1, o2 = o1 * scale, o2 * scale
    tl.store(ptr, o1.to(dt), mask=ok)
    tl.store(ptr + HALF * sd, o2.to(dt), mask=ok)


@triton.jit
def _rope_fwd(
    Q,
    K,
    Cos,
    Sin,
    QScale,
    sqb,
    sqh,
    sqt,
    sqd,
    skb,
    skh,
    skt,
    skd,
    sct,
    sst,
    T,
    HQ,
    HKV,
    HALF: tl.constexpr,
    BLOCK_HQ: tl.constexpr,
    BLOCK_HKV: tl.constexpr,
):
    pid = tl.program_id(0)
    b, t = pid // T, pid % T
    d = tl.arange(0, HALF)
    dt: tl.constexpr = Q.dtype.element_ty
    c1 = _round(tl.load(Cos + t * sct + d), dt)
    c2 = _round(tl.load(Cos + t * sct + HALF + d), dt)
    s1 = _round(tl.load(Sin + t * sst + d), dt)
    s2 = _round(tl.load(Sin + t * sst + HALF + d), dt)
    scale = _round(tl.load(QScale + t), dt)
    _rotate(Q, sqb, sqh, sqt, sqd, b, t, HQ, c1, c2, s1, s2, scale, HALF, BLOCK_HQ, True)
    _rotate(K, skb, skh, skt, skd, b, t, HKV, c1, c2, s1, s2, scale, HALF, BLOCK_HKV, False)


def rope_triton(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, q_scale: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """q [B, Hq, T, D], k [B, Hkv, T, D] (any strides, same dtype); cos, sin [T, D]; q_scale [T] or None (1).

    Rotates q and k in place and returns them.
    """
    bsz, hq, t, dim = q.shape
    hkv = k.shape[1]
    assert k.shape == (bsz, hkv, t, dim) and k.dtype == q.dtype, "q and k must share B, T, D and dtype"
    assert dim >= 2 and dim & (dim - 1) == 0, f"head_dim {dim} must be a power of two"
    cos, sin = cos.float(), sin.float()
    cos, sin = (c if c.stride(-1) == 1 else c.contiguous() for c in (cos, sin))
    q_scale = torch.ones(t, device=q.device) if q_scale is None else q_scale.float().contiguous()
    if bsz * t == 0:
        return q, k
    _rope_fwd[(bsz * t,)](
        q,
        k,
        cos,
        sin,
        q_scale,
        *q.stride(),
        *k.stride(),
        cos.stride(0),
        sin.stride(0),
        t,
        hq,
        hkv,
        HALF=dim // 2,
        BLOCK_HQ=triton.next_power_of_2(hq),
        BLOCK_HKV=triton.next_power_of_2(hkv),
        num_warps=4 if hq * dim >= 2048 else 1,
    )
    return q, k
