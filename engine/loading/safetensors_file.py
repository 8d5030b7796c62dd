"""Writing a safetensors file one chunk at a time, for files too large to build in memory first (a
random 8B checkpoint, the int8 copy of one): `safetensors.torch.save_file` serializes every tensor
into one buffer, a second copy of the model."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from engine.loading.direct_file import open_direct

DTYPE_NAMES = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.int8: "I8"}
ALIGN = 64  # where the data starts in the file: a mapped tensor is aligned as far as its offset allows
Progress = Callable[[int, int, str], None]  # as engine.loading's
Entry = tuple[str, torch.dtype, tuple[int, ...]]  # name, dtype, shape


def write_safetensors(
    path: Path,
    entries: list[Entry],
    chunks: Callable[[int], Iterator[torch.Tensor]],
    progress: Progress | None = None,
    direct: bool = False,
) -> None:
    """Write 8-byte little-endian header length, the JSON header (dtype, shape, data_offsets per
    tensor), then the raw bytes of tensor i as `chunks(i)` yields them, converted to its dtype;
    `direct`: around the page cache (engine/loading/direct_file.py)."""
    header: dict[str, object] = {}
    offset = 0
    for name, dtype, shape in entries:
        nbytes = math.prod(shape) * dtype.itemsize
        header[name] = {
            "dtype": DTYPE_NAMES[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-(8 + len(blob)) % ALIGN)  # spaces may pad the header; the data starts ALIGN-aligned
    with open_direct(path) if direct else open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for i, (name, dtype, _) in enumerate(entries):
            for chunk in chunks(i):
                f.write(chunk.to(dtype).contiguous().view(-1).view(torch.uint8).numpy())
            if progress is not None:
                progress(i + 1, len(entries), name)
