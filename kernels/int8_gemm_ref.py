"""Torch reference for kernels/int8_gemm_cpu.c: the arithmetic fbgemm's int8 linear does, stated
plainly (slow: float64 matmuls, exact for these integer sums)."""

from __future__ import annotations

import torch

from kernels.int8_gemm_cpu import INVERSE_STEP


def round_rows_ref(x: torch.Tensor) -> torch.Tensor:
    """u8 of fp32 `x` (rows divided by their absmax): fma(x, 127, 128) in fp32, rounded to the
    nearest integer (ties to even), clamped to [0, 255]. float64 holds x * 127 + 128 exactly, so
    one rounding to fp32 is the fma's."""
    return torch.round((x.double() * INVERSE_STEP + 128).float()).clamp_(0, 255).to(torch.uint8)


def int8_gemm_ref(a: torch.Tensor, q: torch.Tensor, mult: torch.Tensor) -> torch.Tensor:
    """fp32 [M, N]: float(sum over K of (a - 128) * q) * mult, with `q` the plain int8 weight [N, K]."""
    return ((a.double() - 128) @ q.double().T).float() * mult
