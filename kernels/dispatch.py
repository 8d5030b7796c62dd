"""Choose Triton kernels or torch references: `NEMODIFF_KERNELS=auto|triton|torch`.

`auto` uses Triton on CUDA tensors and torch elsewhere. `triton` forces Triton everywhere,
which on a CPU only works with `TRITON_INTERPRET=1` (slow, used by the tests). The Triton kernels
are forward-only (inference), so a tensor autograd tracks always takes the torch path: training
on a GPU gets gradients whatever the backend says.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

BACKENDS = ("auto", "triton", "torch")
_backend: str | None = None


def set_backend(name: str) -> None:
    """Override the environment for this process (the CLI's `--kernels` flag)."""
    global _backend
    if name not in BACKENDS:
        raise ValueError(f"unknown kernel backend {name!r}: choose one of {', '.join(BACKENDS)}")
    _backend = name


@contextmanager
def using(name: str) -> Iterator[None]:
    """`set_backend(name)` for a block, then back to what it was (to compare backends in one process)."""
    global _backend
    previous = _backend
    set_backend(name)
    try:
        yield
    finally:
        _backend = previous


@functools.cache
def _environment() -> str:
    """NEMODIFF_KERNELS, read once: every kernel call asks, and `os.environ` costs microseconds."""
    return os.environ.get("NEMODIFF_KERNELS", "auto")


def backend() -> str:
    name = _backend or _environment()
    if name not in BACKENDS:
        raise ValueError(f"NEMODIFF_KERNELS={name!r}: choose one of {', '.join(BACKENDS)}")
    return name


def use_triton(t: torch.Tensor) -> bool:
    if t.requires_grad and torch.is_grad_enabled():
        return False
    name = backend()
    if name == "torch":
        return False
    if name == "triton":
        return True
    return t.is_cuda
