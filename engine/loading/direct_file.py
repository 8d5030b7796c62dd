"""A file written once, front to back, around the page cache (O_DIRECT), for the int8 cache.

Why: on this project's Linux VM (ext4 on virtio), writing 3.4 GB through the page cache cost 16 s
of system time in the writing thread (page-cache allocation, reclaim and dirty-page throttling),
which a first int8 load's packing and timing then waited for on a 2-core CPU; the same bytes
written with O_DIRECT took 1.4 s and 0.4 s of CPU (docs/BENCHMARKS.md, issue 27). O_DIRECT wants
page-aligned memory, offsets and lengths, so the bytes go through an aligned buffer, the last
block is padded and the file cut back to its length at the end. Where O_DIRECT is missing (macOS,
Windows) or refused (some filesystems: older tmpfs, some network ones), `open_direct` gives a plain
buffered file.
"""

from __future__ import annotations

import mmap
import os
from typing import BinaryIO

import numpy as np

BLOCK = 4096  # O_DIRECT's alignment: the largest logical block size of common disks
BUFFER = 8 << 20  # bytes gathered per write: a multiple of BLOCK


class DirectFile:
    """`write()` bytes-like data in order, then `close()`; usable as a context manager."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buffer = mmap.mmap(-1, BUFFER)  # anonymous mappings are page-aligned
        self.view = np.frombuffer(self.buffer, dtype=np.uint8)
        self.filled = 0  # bytes in the buffer not yet written
        self.length = 0  # bytes given to write() so far

    def write(self, data) -> None:
        src = np.frombuffer(data, dtype=np.uint8)
        self.length += len(src)
        while len(src):
            n = min(len(src), BUFFER - self.filled)
            self.view[self.filled : self.filled + n] = src[:n]  # numpy copies without the GIL
            self.filled += n
            src = src[n:]
            if self.filled == BUFFER:
                self._flush(BUFFER)

    def _flush(self, n: int) -> None:
        data = memoryview(self.buffer)[:n]
        while len(data):
            data = data[os.write(self.fd, data) :]
        self.filled = 0

    def close(self) -> None:
        if self.fd < 0:
            return
        try:
            if self.filled:
                self._flush(-(-self.filled // BLOCK) * BLOCK)  # the tail padded to a whole block...
            os.ftruncate(self.fd, self.length)  # ...then cut back to the file's length
        finally:
            os.close(self.fd)
            self.fd = -1
            del self.view
            self.buffer.close()

    def __enter__(self) -> DirectFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_direct(path: os.PathLike | str) -> DirectFile | BinaryIO:
    """`path` opened for writing (created or emptied) with O_DIRECT, else as a plain file."""
    flag = getattr(os, "O_DIRECT", 0)
    if flag:
        try:
            return DirectFile(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flag, 0o644))
        except OSError:  # EINVAL: this filesystem does not do direct I/O
            pass
    return open(path, "wb")
