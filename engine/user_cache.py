"""Where nemodiff keeps what it works out from a checkpoint (its int8 copy, auto's pass costs), and
how such an entry names the checkpoint: by its weight files' paths, sizes and modification times,
so that an edited checkpoint gets new entries."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_dir() -> Path:
    """$NEMODIFF_CACHE_DIR, else $XDG_CACHE_HOME/nemodiff, else ~/.cache/nemodiff."""
    if explicit := os.environ.get("NEMODIFF_CACHE_DIR"):
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nemodiff"


def files_identity(files: list[Path]) -> list[tuple[str, int, int]]:
    """(resolved path, size, modification time in ns) of each file."""
    return [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def entry_key(*parts: object) -> str:
    """A file name for the JSON-serializable `parts`: 32 hex digits of their SHA-256."""
    return hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()[:32]
