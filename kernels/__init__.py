"""Compute kernels the engine calls, each beside its torch reference.

`kernels.ops` is the only entry point the engine uses; it routes every call to the Triton
kernel or the torch reference according to `NEMODIFF_KERNELS` (see `kernels.dispatch`).
"""
