"""The int8 copy of a checkpoint's matmul weights, kept in the user's cache so that the next
`--dtype int8` load reads int8 (half the bytes of bf16) and quantizes nothing.

A copy is keyed by the checkpoint's weight files (path, size, modification time) and the format
version, so an edited checkpoint gets a new copy. A first load does not wait for it: a background
thread writes each tensor as it is made, while the load goes on quantizing. It is
written to a temporary file, flushed to disk, then renamed: a crash, even of the machine, never
leaves half a copy under the real name, and the temporary file of a process that died is removed by
the next write. A copy that cannot be read (damaged, from another version) is ignored with a note
and rebuilt.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from engine.errors import first_line
from engine.loading.safetensors_file import Entry, write_safetensors
from engine.model.quantize import Int8Module
from engine.user_cache import cache_dir, entry_key, files_identity
from kernels import int8_gemm_cpu

# Bump when quantize_rows, the tensor names or their layout change (2: rounding by the reciprocal
# scale; 3: weights in our GEMM's layout, whose group and chunk sizes are in the key too).
FORMAT = 3
log = logging.getLogger(__name__)
_writers: list[threading.Thread] = []


def cache_file(weight_files: list[Path]) -> Path:
    layout = (int8_gemm_cpu.GROUP, int8_gemm_cpu.CHUNK)
    return cache_dir() / "int8" / f"{entry_key(FORMAT, layout, files_identity(weight_files))}.safetensors"


def read(file: Path) -> dict[str, torch.Tensor] | None:
    """The cached tensors, or None when there is no usable copy (a damaged one is noted)."""
    if not file.is_file():
        return None
    try:
        with safe_open(file, framework="pt") as f:
            names = list(f.keys())
        tensors = {}
        for name in names:  # one handle each: a tensor maps the file, and its pages leave the process
            with safe_open(file, framework="pt") as f:  # with it (where install_int8 copies it, and drops it)
                tensors[name] = f.get_tensor(name)
        return tensors
    except (SafetensorError, OSError, ValueError) as e:
        log.warning("int8 cache %s is unreadable (%s): quantizing again", file, first_line(e))
        return None


class Abandoned(Exception):
    """The load that was making the tensors failed: the copy is dropped."""


class Handover:
    """Tensors passed from the load that makes them to the writer, which waits for each in its
    file's order: a first load writes its copy while it is still quantizing, and each tensor is
    released once both the writer and the model are done with it. Once either side
    ends (the load failed, or the writer stopped: an unwritable cache), nothing more is held."""

    def __init__(self) -> None:
        self._ready: dict[str, torch.Tensor] = {}
        self._changed = threading.Condition()
        self._ended = False

    def passing(self, modules: Iterator[Int8Module]) -> Iterator[Int8Module]:
        """`modules` as they come, each handed to the writer on its way."""
        for name, q, scale in modules:
            with self._changed:
                if not self._ended:
                    self._ready |= {f"{name}.qweight": q, f"{name}.scale": scale}
                    self._changed.notify()
            yield name, q, scale

    def end(self) -> None:
        with self._changed:
            self._ended = True
            self._ready.clear()
            self._changed.notify()

    def take(self, name: str) -> torch.Tensor:
        with self._changed:
            self._changed.wait_for(lambda: name in self._ready or self._ended)
            if name not in self._ready:
                raise Abandoned
            return self._ready.pop(name)


def write_in_background(file: Path, layout: list[Entry]) -> Handover:
    """`write` the tensors of `layout` on a thread of its own, at low priority so that generating
    goes first, as the returned Handover passes them. Not a daemon: a process that ends soon after
    its load waits for the copy rather than losing it."""
    handover = Handover()

    def run() -> None:
        if sys.platform == "linux":  # there a thread has its own nice value (elsewhere the id is no pid)
            with suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            with suppress(Abandoned):
                write(file, layout, handover.take)
        finally:
            handover.end()

    thread = threading.Thread(target=run, name="int8 cache writer")
    thread.start()
    _writers.append(thread)
    return handover


def wait_for_writes() -> None:
    """Return once every background write has ended (tests, and anything about to read the cache)."""
    while _writers:
        _writers.pop().join()


def write(file: Path, layout: list[Entry], take: Callable[[str], torch.Tensor]) -> None:
    """Write the tensors of `layout`, each as `take(name)` gives it, atomically and around the page
    cache (engine/loading/direct_file.py); a cache that cannot be written (read-only, full disk)
    costs only a note."""
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    # The int8 weights first: their sizes are multiples of 64 bytes for every NLD shape, so each is
    # aligned to 64 bytes where the file is mapped (our GEMM uses them there; the weight-only kernel
    # needs it, and engine/model/quantize.py copies any that is not).
    entries = sorted(layout, key=lambda entry: entry[1] != torch.int8)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(file.parent)
        write_safetensors(tmp, entries, lambda i: iter([take(entries[i][0])]), direct=True)
        with open(tmp, "rb") as f:  # on disk before it has the real name
            os.fsync(f.fileno())
        os.replace(tmp, file)
    except OSError as e:
        log.warning("int8 cache not written to %s (%s): the next load quantizes again", file, first_line(e))
    finally:  # whatever stopped the write (Ctrl-C too): no half copy is left in the user's cache
        _remove(tmp)


def _remove(tmp: Path) -> None:
    with suppress(OSError):  # e.g. a file where the cache folder should be: nothing was written
        tmp.unlink(missing_ok=True)


def _remove_orphans(folder: Path) -> None:
    """Delete the temporary files of processes that died while writing (killed, or the machine)."""
    for tmp in folder.glob(".*.tmp"):
        try:
            os.kill(int(tmp.suffixes[-2].lstrip(".")), 0)
        except ProcessLookupError:
            _remove(tmp)
        except (ValueError, IndexError, PermissionError):  # not ours, or a live process of another user
            pass
