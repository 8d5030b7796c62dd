"""Torch reference for kernels/int8_gemm_cpu.c: the arithmetic of W8A8 through fbgemm's int8
linear (engine/model/quantize.py), stated plainly (slow: float64 matmuls, exact for these integer
sums)."""

from __future__ import annotations

import torch

from kernels.int8_gemm_cpu import INVERSE_STEP


def round_rows_ref(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(u8 [M, K], fp32 row scales [M]) of fp32 `x`: each row's absmax (at least the smallest
    normal float) as its scale, x / scale in fp32, then fma(., 127, 128) in fp32 rounded to the
    nearest integer (ties to even) and clamped to [0, 255]. float64 holds x / scale * 127 + 128
    exactly, so one rounding to fp32 is the fma's."""
    scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    unit = x / scale
    a = torch.round((unit.double() * INVERSE_STEP + 128).float()).clamp_(0, 255).to(torch.uint8)
    return a, scale.squeeze(-1)


def int8_gemm_ref(
    a: torch.Tensor, row_scale: torch.Tensor, q: torch.Tensor, mult: torch.Tensor
) -> torch.Tensor:
    """fp32 [M, N]: float(sum over K of (a - 128) * q) * mult * row_scale, with `q` the plain int8
    weight [N, K]."""
    return ((a.double() - 128) @ q.double().T).float() * mult * row_scale[:, None]
