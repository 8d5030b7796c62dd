"""Every Triton kernel compiles for an H100 (sm_90) at the engine's 3B shapes, without a GPU.

The interpreter runs kernels as Python, so it never sees GPU-only compile errors (layouts,
tensor-core shapes, shared-memory budgets). `triton.compile` with an explicit target needs only
the ptxas Triton ships, so this runs anywhere; it runs in a child process because the other
kernel tests import the kernels in interpreter mode.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_LIMIT = 227 * 1024  # opt-in shared memory per block on sm_90

PTR = {"bf16": "*bf16", "fp32": "*fp32", "u8": "*u8", "i32": "*i32", "i64": "*i64"}


def _compile(fn, pointers: dict[str, str], consts: dict, floats=(), aligned=(), num_warps=4, num_stages=3):
    """Compile `fn` for sm_90; pointers and the `aligned` int arguments are 16-divisible, as at launch."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sig = {
        n: "constexpr" if n in consts else PTR.get(pointers.get(n, ""), "fp32" if n in floats else "i32")
        for n in fn.arg_names
    }
    attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in (*pointers, *aligned)}
    kernel = triton.compile(
        ASTSource(fn, sig, consts, attrs),
        target=GPUTarget("cuda", 90, 32),
        options=dict(num_warps=num_warps, num_stages=num_stages),
    )
    assert kernel.metadata.shared <= SHARED_LIMIT, (
        f"{fn.__name__}: {kernel.metadata.shared} B of shared memory"
    )
    return kernel


def _compile_all() -> None:
    from kernels import attention, rmsnorm, rope, swiglu, token_select

    unit = dict(sqd=1, skd=1, svd=1, sod=1, smj=1)  # Triton specializes unit strides at launch
    strides = [f"s{t}{d}" for t in "qkvo" for d in ("b", "h", "t" if t in "qo" else "n")]
    attn_ptrs = dict(Q="bf16", K="bf16", V="bf16", Out="bf16", Mask="u8", Part="fp32", Stats="fp32")
    for block_m, pattern, split, warps, stages in [
        (128, 2, False, 8, 2),
        (128, 0, False, 8, 2),
        (16, 0, True, 4, 3),
    ]:
        consts = dict(
            GROUP=4,
            HEAD_DIM=128,
            BLOCK_M=block_m,
            BLOCK_N=64,
            PATTERN=pattern,
            SPLIT=split,
            UPCAST=False,
            PRECISION="tf32",
            **unit,
        )
        ptx = _compile(attention._attn_fwd, attn_ptrs, consts, ("qk_scale",), strides, warps, stages).asm[
            "ptx"
        ]
        assert "cp.async" in ptx, "the K/V loads should be software-pipelined"
    _compile(
        attention._attn_merge,
        dict(Part="fp32", Stats="fp32", Out="bf16"),
        dict(SPLITS=33, BLOCK_S=64, HEAD_DIM=128),
    )
    _compile(
        rmsnorm._rms_norm_fwd,
        dict(X="bf16", R="bf16", W="bf16", Out="bf16", Sum="bf16"),
        dict(HAS_RESIDUAL=True, BLOCK=4096),
        ("eps",),
        num_warps=8,
    )
    _compile(
        rope._rope_fwd,
        dict(Q="bf16", K="bf16", Cos="fp32", Sin="fp32", QScale="fp32"),
        dict(HALF=64, BLOCK_HQ=32, BLOCK_HKV=8, sqd=1, skd=1),
    )
    for final in (False, True):
        _compile(
            token_select._argmax_conf_partial,
            dict(L="bf16", PMax="fp32", PSum="fp32", PIdx="i32", Ids="i64", Conf="fp32"),
            dict(BLOCK=2048, FINAL=final),
            num_warps=8,
        )
    _compile(
        token_select._argmax_conf_merge,
        dict(L="bf16", PMax="fp32", PSum="fp32", PIdx="i32", Ids="i64", Conf="fp32"),
        dict(SPLITS=9, BLOCK_S=16),
        num_warps=1,
    )
    _compile(token_select._accept_length, dict(D="i64", Tg="i64", Out="i32"), dict(BLOCK=64), num_warps=1)
    _compile(
        swiglu._swiglu_fwd, dict(G="bf16", U="bf16", Out="bf16"), dict(BLOCK=1024), aligned=("sg", "su", "so")
    )


def test_kernels_compile_for_sm90():
    pytest.importorskip("triton.backends.nvidia")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, __file__], env=env, cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    _compile_all()
