"""The kernel entry points the engine calls; each routes to Triton or its torch reference.

Triton modules are imported lazily so a CPU-only install never needs Triton.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from kernels.attention_ref import Pattern, attention_ref
from kernels.dispatch import use_triton
from kernels.rmsnorm_ref import rms_norm_ref
from kernels.rope_ref import rope_packed, rope_ref, signed_sin
from kernels.swiglu_ref import swiglu_ref
from kernels.token_select_ref import accept_length_ref, argmax_confidence_ref

__all__ = [
    "Pattern",
    "Kernels",
    "kernels_for",
    "attention",
    "rms_norm",
    "rope",
    "rope_packed",
    "signed_sin",
    "swiglu",
    "argmax_confidence",
    "accept_length",
]


def attention(q, k, v, cache_len: int, pattern: Pattern, mask=None, scale=None) -> torch.Tensor:
    """A Pattern.MASK mask over the cache too ([T, cache_len + T], as CUDA graphs' fixed windows
    need) goes to the torch reference: the Triton kernel takes a chunk mask; so do half-precision
    queries over a CPU's fp32 cache (`NLDModel.new_cache`)."""
    if use_triton(q) and q.dtype == k.dtype and (mask is None or mask.shape[-1] == q.shape[2]):
        from kernels.attention import attention_triton

        return attention_triton(q, k, v, cache_len, pattern, mask, scale)
    return attention_ref(q, k, v, cache_len, pattern, mask, scale)


def rms_norm(x, weight, eps: float, residual=None) -> tuple[torch.Tensor, torch.Tensor]:
    if use_triton(x):
        from kernels.rmsnorm import rms_norm_triton

        return rms_norm_triton(x, weight, eps, residual)
    return rms_norm_ref(x, weight, eps, residual)


def rope(q, k, cos, sin, q_scale) -> tuple[torch.Tensor, torch.Tensor]:
    if use_triton(q):
        from kernels.rope import rope_triton

        return rope_triton(q, k, cos, sin, q_scale)
    return rope_ref(q, k, cos, sin, q_scale)


def swiglu(gate, up) -> torch.Tensor:
    if use_triton(gate):
        from kernels.swiglu import swiglu_triton

        return swiglu_triton(gate, up)
    return swiglu_ref(gate, up)


def argmax_confidence(logits, mask_id: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if use_triton(logits):
        from kernels.token_select import argmax_confidence_triton

        return argmax_confidence_triton(logits, mask_id)
    return argmax_confidence_ref(logits, mask_id)


def accept_length(draft, target) -> int:
    if use_triton(draft):
        from kernels.token_select import accept_length_triton

        return accept_length_triton(draft, target)
    return accept_length_ref(draft, target)


@dataclass(frozen=True)
class Kernels:
    """The kernels one pass calls, chosen once per pass: on a CPU each per-op choice cost more than
    some of the ops it chose for (a read of the environment each)."""

    triton: bool  # Triton's entry points (each still routes by its inputs), or the torch references
    attention: Callable
    rms_norm: Callable
    rope: Callable
    swiglu: Callable


ROUTED = Kernels(True, attention, rms_norm, rope, swiglu)
REFERENCE = Kernels(False, attention_ref, rms_norm_ref, rope_ref, swiglu_ref)


def kernels_for(t: torch.Tensor) -> Kernels:
    return ROUTED if use_triton(t) else REFERENCE
