"""Triton attention over [cached K/V + current chunk]: one flash-attention kernel for every pattern.

Semantics are `kernels.attention_ref.attention_ref`. Design:

* GQA packing: the `Hq / Hkv` query heads that share a KV head are packed into the rows of one
  tile (row = t * group + g), so each K/V tile is read once per group instead of once per head.
  That is also what makes a single decode query (T == 1) a usable tensor-core tile.
* Split keys (flash-decoding): when batch x KV heads x row tiles gives too few programs to fill
  the GPU (decode, short chunks over a long cache), the key range is split across programs that
  write partial (acc, max, sum) in fp32; a second small kernel merges them.
* Each program walks its keys in two loops: whole tiles every row of the tile may see (no mask
  arithmetic), then the remainder with bounds + pattern masks. CAUSAL stops at the last key the
  tile's last query sees; MASK skips chunk tiles its rows cannot see at all.
* Fully masked rows give 0, as `F.scaled_dot_product_attention` does.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from kernels.attention_ref import Pattern
from kernels.launch import split_count

_PATTERN_ID = {Pattern.CAUSAL: 0, Pattern.BIDIRECTIONAL: 1, Pattern.MASK: 2}
_LOG2E = 1.4426950408889634


@triton.jit
def _attn_tiles(
    acc,
    m_i,
    l_i,
    q,
    k_base,
    v_base,
    mask_base,
    start,
    end,
    hi,
    t,
    row_ok,
    cache_len,
    qk_scale,
    skn,
    skd,
    svn,
    svd,
    smj,
    HEAD_DIM: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PATTERN: tl.constexpr,
    MASKED: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Online-softmax update of (acc, m_i, l_i) over keys [start, end) in BLOCK_N tiles.

    Scores are kept in log2 units (`qk_scale` = softmax scale * log2(e)). MASKED applies the key
    bound `hi` and the pattern; without it every key of every tile is visible to every row.
    """
    d = tl.arange(0, HEAD_DIM)
    for n0 in range(start, end, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        k_ptr = k_base + n[None, :] * skn + d[:, None] * skd
        v_ptr = v_base + n[:, None] * svn + d[None, :] * svd
        if MASKED:
            in_range = n < hi
            if PATTERN == 0:
                visible = (n[None, :] <= cache_len + t[:, None]) & in_range[None, :]
            elif PATTERN == 1:
                visible = in_range[None, :] & row_ok[:, None]
            else:
                j = n - cache_len
                chunk = tl.load(
                    mask_base + j[None, :] * smj,
                    mask=row_ok[:, None] & ((j >= 0) & in_range)[None, :],
                    other=0,
                )
                visible = ((chunk != 0) | (j < 0)[None, :]) & in_range[None, :]
            run = tl.sum(visible.to(tl.int32)) > 0  # MASK: skip tiles no row of this tile sees
        else:
            run = True
        if run:
            if MASKED:
                k = tl.load(k_ptr, mask=in_range[None, :], other=0.0)
            else:
                k = tl.load(k_ptr)
            if UPCAST:
                k = k.to(tl.float32)
            s = tl.dot(q, k, input_precision=PRECISION) * qk_scale
            if MASKED:
                s = tl.where(visible, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            if MASKED:
                m_new = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows that saw nothing yet
            p = tl.math.exp2(s - m_new[:, None])
            alpha = tl.math.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            if MASKED:
                v = tl.load(v_ptr, mask=in_range[:, None], other=0.0)
            else:
                v = tl.load(v_ptr)
            p = p.to(v.dtype)
            if UPCAST:
                p, v = p.to(tl.float32), v.to(tl.float32)
            acc = acc * alpha[:, None] + tl.dot(p, v, input_precision=PRECISION)
            m_i = m_new
    return acc, m_i, l_i


@triton.jit
def _attn_fwd(
    Q,
    K,
    V,
    Out,
    Mask,
    Part,
    Stats,
    sqb,
    sqh,
    sqt,
    sqd,
    skb,
    skh,
    skn,
    skd,
    svb,
    svh,
    svn,
    svd,
    sob,
    soh,
    sot,
    sod,
    smi,
    smj,
    HQ,
    HKV,
    T,
    N,
    cache_len,
    keys_per_split,
    qk_scale,
    GROUP: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PATTERN: tl.constexpr,
    SPLIT: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """One program: BLOCK_M packed (query, head-in-group) rows of one KV head, over one key split."""
    pid_m, pid_bh, pid_s = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    b, hkv = pid_bh // HKV, pid_bh % HKV
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    t, g = rows // GROUP, rows % GROUP
    row_ok = t < T
    hq = hkv * GROUP + g
    d = tl.arange(0, HEAD_DIM)

    q = tl.load(
        Q + b * sqb + hq[:, None] * sqh + t[:, None] * sqt + d[None, :] * sqd, mask=row_ok[:, None], other=0.0
    )
    if UPCAST:
        q = q.to(tl.float32)

    # Keys this program covers, and the prefix of them every row of the tile sees.
    lo = pid_s * keys_per_split
    hi = tl.minimum(lo + keys_per_split, N)
    t_first = (pid_m * BLOCK_M) // GROUP
    if PATTERN == 0:
        t_last = tl.minimum(pid_m * BLOCK_M + BLOCK_M - 1, T * GROUP - 1) // GROUP
        hi = tl.minimum(hi, cache_len + t_last + 1)
        seen_by_all = cache_len + t_first + 1
    elif PATTERN == 1:
        seen_by_all = N
    else:
        seen_by_all = cache_len
    full_end = lo + tl.maximum(tl.minimum(hi, seen_by_all) - lo, 0) // BLOCK_N * BLOCK_N

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    k_base = K + b * skb + hkv * skh
    v_base = V + b * svb + hkv * svh
    mask_base = Mask + t[:, None] * smi
    acc, m_i, l_i = _attn_tiles(
        acc,
        m_i,
        l_i,
        q,
        k_base,
        v_base,
        mask_base,
        lo,
        full_end,
        hi,
        t,
        row_ok,
        cache_len,
        qk_scale,
        skn,
        skd,
        svn,
        svd,
        smj,
        HEAD_DIM,
        BLOCK_N,
        PATTERN,
        False,
        UPCAST,
        PRECISION,
    )
    acc, m_i, l_i = _attn_tiles(
        acc,
        m_i,
        l_i,
        q,
        k_base,
        v_base,
        mask_base,
        full_end,
        hi,
        hi,
        t,
        row_ok,
        cache_len,
        qk_scale,
        skn,
        skd,
        svn,
        svd,
        smj,
        HEAD_DIM,
        BLOCK_N,
        PATTERN,
        True,
        UPCAST,
        PRECISION,
    )

    if SPLIT:
        n_splits = tl.num_programs(2)
        row_id = (b * HQ + hq) * T + t
        tl.store(
            Part + (row_id[:, None] * n_splits + pid_s) * HEAD_DIM + d[None, :], acc, mask=row_ok[:, None]
        )
        tl.store(Stats + (row_id * n_splits + pid_s) * 2, m_i, mask=row_ok)
        tl.store(Stats + (row_id * n_splits + pid_s) * 2 + 1, l_i, mask=row_ok)
    else:
        out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]  # fully masked rows: acc == 0 -> 0
        o_ptr = Out + b * sob + hq[:, None] * soh + t[:, None] * sot + d[None, :] * sod
        tl.store(o_ptr, out.to(Out.dtype.element_ty), mask=row_ok[:, None])


@triton.jit
def _attn_merge(
    Part,
    Stats,
    Out,
    HQ,
    T,
    sob,
    soh,
    sot,
    sod,
    SPLITS: tl.constexpr,
    BLOCK_S: tl.constexpr,
    HEAD_DIM: tl.constexpr,
):
    """Merge the key splits of one query row: rescale each partial to the global max and sum."""
    row_id = tl.program_id(0)
    b, hq, t = row_id // (HQ * T), (row_id // T) % HQ, row_id % T
    s = tl.arange(0, BLOCK_S)
    d = tl.arange(0, HEAD_DIM)
    ok = s < SPLITS
    m = tl.load(Stats + (row_id * SPLITS + s) * 2, mask=ok, other=float("-inf"))
    l = tl.load(Stats + (row_id * SPLITS + s) * 2 + 1, mask=ok, other=0.0)
    m_max = tl.max(m, 0)
    m_max = tl.where(m_max == float("-inf"), 0.0, m_max)
    w = tl.math.exp2(m - m_max)
    total = tl.sum(l * w, 0)
    part = tl.load(Part + (row_id * SPLITS + s[:, None]) * HEAD_DIM + d[None, :], mask=ok[:, None], other=0.0)
    out = tl.sum(part * w[:, None], 0)
    out = out / tl.where(total > 0, total, 1.0)
    tl.store(Out + b * sob + hq * soh + t * sot + d * sod, out.to(Out.dtype.element_ty))


def attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cache_len: int,
    pattern: Pattern,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
    *,
    block_n: int | None = None,
    num_splits: int | None = None,
) -> torch.Tensor:
    """q [B, Hq, T, D]; k, v [B, Hkv, cache_len + T, D] (any strides) -> [B, Hq, T, D] in q's dtype.

    The output is a [B, T, Hq, D] buffer seen through a transpose, so the caller's
    `.transpose(1, 2).reshape(B, T, Hq * D)` is free. `block_n` and `num_splits` override the
    tile heuristics (tests use them to cover multi-tile and split paths at tiny shapes).
    """
    bsz, hq, t, dim = q.shape
    hkv, n_keys = k.shape[1], k.shape[2]
    assert hq % hkv == 0, f"{hq} query heads are not a multiple of {hkv} KV heads"
    assert dim >= 16 and dim & (dim - 1) == 0, f"head_dim {dim} must be a power of two >= 16"
    assert n_keys == cache_len + t and v.shape == k.shape, "k/v must hold cache_len + T positions"
    pattern = Pattern(pattern)
    if pattern is Pattern.MASK:
        assert mask is not None and mask.shape == (t, t), "Pattern.MASK needs a [T, T] mask"
        mask_u8 = mask.to(device=q.device, dtype=torch.bool).view(torch.uint8)
        mask_strides = mask_u8.stride()
    else:
        mask_u8, mask_strides = q, (0, 0)  # never read
    group = hq // hkv
    scale = 1.0 / math.sqrt(dim) if scale is None else scale

    rows = t * group
    block_m = 128 if rows >= 128 else max(16, triton.next_power_of_2(rows))
    block_n = block_n or 64
    m_tiles = triton.cdiv(rows, block_m)
    if num_splits is None:
        num_splits = split_count(bsz * hkv * m_tiles, triton.cdiv(n_keys, block_n), 2, q.device)
    keys_per_split = triton.cdiv(triton.cdiv(n_keys, num_splits), block_n) * block_n
    num_splits = triton.cdiv(n_keys, keys_per_split)

    out = torch.empty(bsz, t, hq, dim, device=q.device, dtype=q.dtype).transpose(1, 2)
    if out.numel() == 0:
        return out
    split = num_splits > 1
    if split:
        part = torch.empty(bsz * hq * t, num_splits, dim, device=q.device, dtype=torch.float32)
        stats = torch.empty(bsz * hq * t, num_splits, 2, device=q.device, dtype=torch.float32)
    else:
        part = stats = out  # never read
    big_tile = block_m >= 128 and dim >= 128
    _attn_fwd[(m_tiles, bsz * hkv, num_splits)](
        q,
        k,
        v,
        out,
        mask_u8,
        part,
        stats,
        *q.stride(),
        *k.stride(),
        *v.stride(),
        *out.stride(),
        *mask_strides,
        hq,
        hkv,
        t,
        n_keys,
        cache_len,
        keys_per_split,
        scale * _LOG2E,
        GROUP=group,
        HEAD_DIM=dim,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        PATTERN=_PATTERN_ID[pattern],
        SPLIT=split,
        # The CPU interpreter's tl.dot multiplies bf16 operands as raw integers: compute in fp32 there.
        UPCAST=q.device.type != "cuda" and q.dtype == torch.bfloat16,
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        num_warps=8 if big_tile else 4,
        num_stages=2 if big_tile else 3,
    )
    if split:
        _attn_merge[(bsz * hq * t,)](
            part,
            stats,
            out,
            hq,
            t,
            *out.stride(),
            SPLITS=num_splits,
            BLOCK_S=triton.next_power_of_2(num_splits),
            HEAD_DIM=dim,
            num_warps=4,
        )
    return out
