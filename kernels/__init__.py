"""Compute kernels the engine calls, each beside its torch reference.

`kernels.ops` is the entry point the engine uses for these; it routes every call to the Triton
kernel or the torch reference according to `NEMODIFF_KERNELS` (see `kernels.dispatch`). The one
CPU kernel, the int8 GEMM of `int8_gemm_cpu.c`, is called by engine/model/quantize.py through
`kernels.int8_gemm_cpu`, which builds it with the system's C compiler; `int8_gemm_ref.py` is its
torch reference.
"""
