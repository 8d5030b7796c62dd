"""Host-side helpers shared by the Triton kernel launchers: row views and how finely to split work."""

from __future__ import annotations

import functools

import torch
import triton


def rows_view(t: torch.Tensor) -> torch.Tensor:
    """`t` as [rows, last dim] with a unit column stride: a view whenever the leading dims flatten
    (row-strided slices such as the halves of a fused projection included), else a copy."""
    t = t if t.stride(-1) == 1 else t.contiguous()
    return t.reshape(-1, t.shape[-1])


@functools.cache
def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def split_count(programs: int, tiles: int, min_tiles: int, device: torch.device) -> int:
    """How many programs should share each of `programs` work items of `tiles` tiles.

    Aims at ~2 programs per SM, each keeping at least `min_tiles` tiles; 1 off CUDA (the
    interpreter gains nothing from splitting).
    """
    if device.type != "cuda":
        return 1
    sms = _sm_count(device)
    if programs >= sms:
        return 1
    return max(1, min(triton.cdiv(2 * sms, programs), tiles // min_tiles))
