"""The demo model's corpus: the Python standard library of the running interpreter.

Every install of the engine already has it, so the demo model needs no download and its training
data is inspectable by anyone. A fixed set of modules (with their tests) is held out so that
completions can be judged on code the model has never seen. The test suite is about half the
text, and some distributions ship it separately (Debian and Ubuntu: `libpython3.X-testsuite`):
training on such a library learns half the corpus by heart (docs/BENCHMARKS.md, the GPU run), so
`require_complete` refuses it and a copy of a complete library can be named instead.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

# Top-level modules/packages never trained on; their tests (`test/test_<name>.py` or the package
# `test/test_<name>/`) are held out with them. Chosen as small, self-contained, familiar code.
HOLDOUT: tuple[str, ...] = (
    "bisect",
    "calendar",
    "colorsys",
    "csv",
    "difflib",
    "fnmatch",
    "fractions",
    "glob",
    "heapq",
    "ipaddress",
    "json",
    "shlex",
    "statistics",
    "string",
    "textwrap",
)


def stdlib_root(path: str | Path | None = None) -> Path:
    """`path`, or else the running interpreter's standard library."""
    return Path(path) if path is not None else Path(sysconfig.get_paths()["stdlib"])


def require_complete(root: Path) -> None:
    """Refuse a standard library without its test suite (FileNotFoundError, one line)."""
    if not (root / "test" / "__init__.py").is_file():
        raise FileNotFoundError(
            f"{root} has no test/ package (on Debian and Ubuntu it is libpython3.X-testsuite): "
            "the corpus would be half its size; name a complete standard library with --stdlib DIR"
        )


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


def _files(holdout: bool, root: Path) -> list[tuple[str, str]]:
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


def train_files(root: Path | None = None) -> list[tuple[str, str]]:
    """(stdlib-relative path, text) of every training file, sorted by path."""
    return _files(holdout=False, root=root or stdlib_root())


def holdout_files(root: Path | None = None) -> list[tuple[str, str]]:
    """(stdlib-relative path, text) of every held-out file, sorted by path."""
    return _files(holdout=True, root=root or stdlib_root())
