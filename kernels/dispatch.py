"""Choose Triton kernels or torch references: `NEMODIFF_KERNELS=auto|triton|torch`.

`auto` uses Triton on CUDA tensors and torch elsewhere. `triton` forces Triton everywhere,
which on a CPU only works with `TRITON_INTERPRET=1` (slow, used by the tests). The Triton kernels
are forward-only (inference), so a tensor autograd tracks always takes the torch path: training
on a GPU gets gradients whatever the backend says.
"""

from __future__ import annotations

import functools
import importlib.util
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


def backend() -> str:
    """The backend asked for; ValueError (one line for the CLI) when it is unknown, or is Triton
    and Triton is not installed, rather than an ImportError at the first kernel call."""
    name = _backend or os.environ.get("NEMODIFF_KERNELS", "auto")
    if name not in BACKENDS:
        raise ValueError(f"NEMODIFF_KERNELS={name!r}: choose one of {', '.join(BACKENDS)}")
    if name == "triton" and not triton_installed():
        source = "--kernels triton" if _backend else "NEMODIFF_KERNELS=triton"
        raise ValueError(
            f"{source}, but Triton is not installed: pip install triton, or use the torch kernels"
        )
    return name


@functools.cache
def triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def use_triton(t: torch.Tensor) -> bool:
    if t.requires_grad and torch.is_grad_enabled():
        return False
    name = backend()
    if name == "torch":
        return False
    if name == "triton":
        return True
    return t.is_cuda
