"""The demo model's corpus: the Python standard library of the running interpreter.

Every install of the engine already has it, so the demo model needs no download and its training
data is inspectable by anyone. A fixed set of modules (with their tests) is held out so that
completions can be judged on code the model has never seen.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

# Top-level modules/packages never trained on; their tests (`test/test_<name>.py` or the package
# `test/test_<name>/`) are held out with them. Chosen as small, self-contained, familiar code.
HOLDOUT: tuple[str, ...] = (
    "bisect", "calendar", "colorsys", "csv", "difflib", "fnmatch", "fractions", "glob",
    "heapq", "ipaddress", "json", "shlex", "statistics", "string", "textwrap",
)


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _is_holdout(rel: Path) -> bool:
    """Does this stdlib-relative path belong to a held-out module or to its tests?"""
    parts = rel.parts
    if parts[0].removesuffix(".py") in HOLDOUT:
        return True
    if parts[0] == "test" and len(parts) > 1:
        name = parts[1].removesuffix(".py")
        return name.startswith("test_") and name.removeprefix("test_") in HOLDOUT
    return False


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:  # a few test fixtures are deliberately in other encodings
        return None


def _files(holdout: bool) -> list[tuple[str, str]]:
    root = stdlib_root()
    paths = sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix())
    out = []
    for path in paths:
        rel = path.relative_to(root)
        if "site-packages" in rel.parts or _is_holdout(rel) != holdout:
            continue
        text = _read(path)
        if text is not None:
            out.append((rel.as_posix(), text))
    return out


def train_files() -> list[tuple[str, str]]:
    """(stdlib-relative path, text) of every training file, sorted by path."""
    return _files(holdout=False)


def holdout_files() -> list[tuple[str, str]]:
    """(stdlib-relative path, text) of every held-out file, sorted by path."""
    return _files(holdout=True)
