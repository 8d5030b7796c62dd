"""`auto`'s timed pass costs, kept in the user's cache so that a later load of the same checkpoint
in the same dtype on the same machine and thread count need not time them again.

Why: timing the passes (engine/decoding/modes/auto.py) is most of a load of a large model on a CPU:
8-22 s of a 3B load here, in bf16 or int8, longer than reading the weights (docs/BENCHMARKS.md,
issue 27). Only timings that took SAVE_ABOVE_S or more are kept (a small model times in
milliseconds), and on a CPU only those whose threads kept their cores (the process used at least
KEEP_CPU_SHARE of threads x seconds): beside other busy processes, a 2-thread pass waits for its
descheduled partner at every parallel region, and a 3B AR step timed 1.0-1.3 s instead of 0.09-0.15,
figures that would have misled `auto` for every later load. A kept figure does not follow the
machine's load: delete the file (pass_costs/ in the cache folder) to time again. The key holds
everything a figure depends on: the weight files, dtype and int8 kernel, device, CPU model, torch thread count and
version, block size and whether the quadratic pass is timed; a file whose key or values do not fit
is ignored.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
from contextlib import suppress
from pathlib import Path

import torch

from engine.errors import first_line
from engine.user_cache import cache_dir, entry_key, files_identity

VERSION = 2  # bump when the passes timed change (what a kept figure means)
SAVE_ABOVE_S = 2.0
KEEP_CPU_SHARE = 0.75
log = logging.getLogger(__name__)


def costs_file(
    weight_files: list[Path], dtype: str, matmuls: str, device: torch.device, block: int, quadratic: bool
) -> tuple[Path, list]:
    """The file for these costs, and the key stored in it (checked when read). `matmuls`: what the
    int8 matmuls run on (`engine.model.quantize.int8_path`)."""
    key = [
        VERSION,
        files_identity(weight_files),
        dtype,
        matmuls,
        _device_name(device),
        torch.get_num_threads() if device.type == "cpu" else None,
        torch.__version__,
        block,
        quadratic,
    ]
    return cache_dir() / "pass_costs" / f"{entry_key(*key)}.json", key


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def worth_keeping(wall_s: float, cpu_s: float, device: torch.device) -> bool:
    """Is a timing that took `wall_s` seconds and `cpu_s` of the process's CPU time worth keeping?"""
    if wall_s < SAVE_ABOVE_S:
        return False
    return device.type != "cpu" or cpu_s >= KEEP_CPU_SHARE * torch.get_num_threads() * wall_s


def read(file: Path, key: list, names: tuple[str, ...]) -> dict[str, float] | None:
    """The seconds per pass kept under `key` (every one of `names`, finite and positive), or None."""
    try:
        saved = json.loads(file.read_text())
        seconds = {name: float(saved["seconds"][name]) for name in names}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if saved.get("key") != json.loads(json.dumps(key)) or not all(
        math.isfinite(s) and s > 0 for s in seconds.values()
    ):
        return None
    return seconds


def write(file: Path, key: list, seconds: dict[str, float]) -> None:
    """Keep `seconds` under `key` (atomically); a cache that cannot be written costs only a note."""
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"key": key, "seconds": seconds}))
        os.replace(tmp, file)
    except OSError as e:
        log.warning("pass costs not kept in %s (%s): the next load times them again", file, first_line(e))
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
