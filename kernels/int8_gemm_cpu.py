"""The int8 GEMM of int8_gemm_cpu.c for x86 CPUs with AVX512-VNNI: built once with the system's C
compiler into a folder the caller names, loaded with ctypes.

Why a kernel of our own: fbgemm's int8 GEMM (torch's quantized linear) needs its weights packed
at every load, at 0.1-0.2 GB/s a core, and torch cannot save them packed: 16 CPU-seconds of a 3B
int8 load, more than reading the weights. This kernel reads the int8 weights in a layout that a
reshape makes (`interleave`; the int8 cache keeps them so), and its outputs equal fbgemm's bit
for bit (kernels/int8_gemm_ref.py states the arithmetic; tests check all three agree). It also
rounds bf16 weights into that layout at a first load (`Int8Gemm.quantize_weight`), and is 12-31 %
faster than fbgemm from 8 rows up (docs/BENCHMARKS.md, "Our own int8 GEMM").

`load` returns None, and the caller keeps fbgemm, where the CPU lacks AVX512-VNNI, on other
architectures, or where no C compiler works (the reason is logged once).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("int8_gemm_cpu.c")
FLAGS = [
    "-O3",
    "-mavx512f",
    "-mavx512bw",
    "-mavx512vl",
    "-mavx512vnni",
    "-mfma",
    "-fopenmp",
    "-shared",
    "-fPIC",
]
GROUP = 32  # output channels interleaved together: a panel, two 512-bit registers of int32 sums
CHUNK = 4  # bytes of a channel's row per step (what vpdpbusd sums into one int32 lane; `write_rows`)
INVERSE_STEP = float(1 / torch.tensor(1 / 127, dtype=torch.float32))  # fbgemm's 1 / scale for scale 1/127
_NEEDS = ("avx512_f", "avx512_bw", "avx512_vl", "avx512_vnni")
_P = ctypes.c_void_p
log = logging.getLogger(__name__)


def fits(out_features: int, in_features: int) -> bool:
    """Can the kernel multiply by a weight of this shape?"""
    return out_features % GROUP == 0 and in_features % CHUNK == 0


def layout_shape(out_features: int, in_features: int) -> tuple[int, int, int, int]:
    """The shape of an [out, in] weight in the kernel's layout: [groups, chunks, GROUP, CHUNK]."""
    return out_features // GROUP, in_features // CHUNK, GROUP, CHUNK


def write_rows(w: torch.Tensor, start: int, rows: torch.Tensor) -> None:
    """Put the int8 rows [n, K] (n a multiple of GROUP) into `w`, in the kernel's layout, as its
    output channels from `start` (a multiple of GROUP). A panel is the transpose of its 32 rows
    read as int32 (4 bytes each): copied so, 2x faster than in 4-byte runs."""
    n, k = rows.shape
    panels = w[start // GROUP : (start + n) // GROUP].view(torch.int32).view(n // GROUP, k // CHUNK, GROUP)
    panels.copy_(rows.view(torch.int32).view(n // GROUP, GROUP, k // CHUNK).transpose(1, 2))


def interleave(q: torch.Tensor) -> torch.Tensor:
    """The int8 weight [N, K] in the kernel's layout (a copy): panels of 32 channels, within a panel
    4 bytes of each channel's row in turn (a panel streams as one run; int8_gemm_cpu.c says why)."""
    w = torch.empty(layout_shape(*q.shape), dtype=q.dtype)
    write_rows(w, 0, q.contiguous())
    return w


def plain_shape(w: torch.Tensor) -> tuple[int, int]:
    """[N, K] of a weight in the kernel's layout."""
    return w.shape[0] * GROUP, w.shape[1] * CHUNK


def deinterleave(w: torch.Tensor) -> torch.Tensor:
    """`interleave`'s inverse: the int8 weight [N, K] (a copy)."""
    return w.transpose(1, 2).reshape(plain_shape(w))


@dataclass(frozen=True)
class Int8Gemm:
    """The loaded library."""

    lib: ctypes.CDLL

    def matmul(
        self, x: torch.Tensor, w: torch.Tensor, comp: torch.Tensor, mult: torch.Tensor
    ) -> torch.Tensor:
        """[M, N] for `x` [M, K] (fp32 or bf16, and the result in its dtype; others as fp32): each
        row divided by its absmax and rounded to 127 steps either side of a zero point of 128, as
        fbgemm rounds its input; then float(exact sum of (a - 128) * w over K) * mult * the row's
        absmax, on torch's thread count, rounded to bf16 as torch rounds where x is bf16. `w` from
        `interleave`; `comp` from `zero_point_shares`."""
        if x.dtype not in (torch.float32, torch.bfloat16):
            x = x.float()
        x = x.contiguous()
        (m, k), n, bf16 = x.shape, len(comp), x.dtype == torch.bfloat16
        a, row_scale, out = (
            torch.empty(m, k, dtype=torch.uint8),
            torch.empty(m),
            torch.empty(m, n, dtype=x.dtype),
        )
        self.lib.round_rows(m, k, x.data_ptr(), bf16, INVERSE_STEP, row_scale.data_ptr(), a.data_ptr())
        pointers = (t.data_ptr() for t in (a, row_scale, w, comp, mult, out))
        self.lib.gemm(m, n, k, *pointers, bf16, n, torch.get_num_threads())
        return out

    def quantize_weight(self, weight: torch.Tensor, panels: torch.Tensor, scale: torch.Tensor) -> None:
        """Round the bf16 `weight` [n, K] to int8 per output channel into `panels` (its channels'
        panels in the kernel's layout) and fp32 `scale` [n]: engine/model/quantize.py's
        `quantize_rows`, bit for bit, in one pass (int8_gemm_cpu.c)."""
        n, k = weight.shape
        weight = weight.contiguous()
        self.lib.quantize_weight(
            n, k, weight.data_ptr(), panels.data_ptr(), scale.data_ptr(), torch.get_num_threads()
        )

    def zero_point_shares(self, w: torch.Tensor) -> torch.Tensor:
        """`comp` for `matmul`: 128 times the sum of each channel's weights (int32 [N]), from the
        interleaved `w`."""
        n, k = plain_shape(w)
        comp = torch.empty(n, dtype=torch.int32)
        self.lib.zero_point_shares(n, k, w.data_ptr(), comp.data_ptr(), torch.get_num_threads())
        return comp


@functools.cache
def load(build_dir: Path) -> Int8Gemm | None:
    """The kernel, built into `build_dir` on first use (named by a hash of its source, flags and
    compiler, so an edit or another compiler builds anew); None where it cannot run here."""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    if caps.get("architecture") != "x86_64" or not all(caps.get(flag) for flag in _NEEDS):
        return None
    compiler = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        log.warning(
            "no C compiler (%s): int8 uses fbgemm's kernel, which packs weights at each load", compiler
        )
        return None
    try:
        tag = hashlib.sha256(SOURCE.read_bytes() + " ".join([compiler, *FLAGS]).encode()).hexdigest()[:16]
        library = build_dir / f"int8_gemm_cpu-{tag}.so"
        if not library.exists():
            build_dir.mkdir(parents=True, exist_ok=True)
            tmp = library.with_name(f".{library.name}.{os.getpid()}.tmp")
            try:
                command = [compiler, *FLAGS, str(SOURCE), "-o", str(tmp)]
                subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
                os.replace(tmp, library)  # atomic: a process beside us loads a whole file or builds its own
            finally:
                tmp.unlink(missing_ok=True)
        lib = ctypes.CDLL(str(library))
    except (OSError, subprocess.SubprocessError) as e:
        detail = (
            e.stderr.strip().splitlines()[-1]
            if isinstance(e, subprocess.CalledProcessError) and e.stderr
            else e
        )
        log.warning(
            "int8 kernel not built (%s): int8 uses fbgemm's kernel, which packs weights at each load", detail
        )
        return None
    lib.round_rows.argtypes = [ctypes.c_int, ctypes.c_int, _P, ctypes.c_int, ctypes.c_float, _P, _P]
    lib.round_rows.restype = None
    lib.gemm.argtypes = [ctypes.c_int] * 3 + [_P] * 6 + [ctypes.c_int] * 3
    lib.gemm.restype = None
    lib.quantize_weight.argtypes = [ctypes.c_int, ctypes.c_int, _P, _P, _P, ctypes.c_int]
    lib.quantize_weight.restype = None
    lib.zero_point_shares.argtypes = [ctypes.c_int, ctypes.c_int, _P, _P, ctypes.c_int]
    lib.zero_point_shares.restype = None
    return Int8Gemm(lib)
