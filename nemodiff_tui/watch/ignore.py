"""What watch mode leaves alone, and why: each rule gives the one-line reason the user sees.

By name (no read): anything in a `.git` folder, editors' swap, backup and temporary files, and
paths a `.gitignore` excludes. By content (read on save): files over the size limit, binary files
and files that are not UTF-8 (`files.read_text` refuses those).
"""

from __future__ import annotations

import re
from pathlib import Path

import pathspec

from nemodiff_tui.files import FileRefused, read_text

MAX_BYTES = 1_000_000
GIT = ".git"
VIM_PROBE, VIM_PROBE_STEP = 4913, 123  # vim checks a folder is writable with the file 4913 (then 5036, ...)
EDITOR_FILES = (
    (re.compile(r"\..*\.sw[a-p]"), "vim swap file"),
    (re.compile(r".*~"), "backup file"),
    (re.compile(r"\.#.*"), "Emacs lock file"),
    (re.compile(r"#.*#"), "Emacs auto-save file"),
    (re.compile(r".*___jb_(tmp|old)___"), "JetBrains safe-write file"),
    (re.compile(r".*\.kate-swp"), "Kate swap file"),
    (re.compile(r"\.goutputstream-.*"), "GNOME temporary file"),
    (re.compile(r".*\.nemodiff-tmp"), "nemodiff's own temporary file"),
)


def in_git_folder(path: Path) -> bool:
    return GIT in path.parts


def editor_file_reason(name: str) -> str | None:
    """Why a file name is an editor's swap, backup or temporary file, or None."""
    if name.isdigit() and int(name) >= VIM_PROBE and (int(name) - VIM_PROBE) % VIM_PROBE_STEP == 0:
        return "vim's write probe"
    for pattern, what in EDITOR_FILES:
        if pattern.fullmatch(name):
            return what
    return None


class GitIgnore:
    """The `.gitignore` rules over the watched folders: each file read when first needed, and again
    after it changed (`forget`). Rules come from the enclosing repository's top down to the file's
    folder; as in git, a deeper `.gitignore` overrides a shallower one and a later line an earlier one.
    """

    def __init__(self, folders: list[Path]):
        self._tops = {folder: _repository_top(folder) for folder in folders}
        self._specs: dict[Path, pathspec.GitIgnoreSpec | None] = {}

    def reason(self, path: Path) -> str | None:
        """Why `path` is ignored by a `.gitignore`, or None (also for paths outside the folders)."""
        top = next((t for f, t in self._tops.items() if path.is_relative_to(f)), None)
        if top is None:
            return None
        folder = path.parent
        while True:
            spec = self._spec(folder)
            if spec is not None:
                result = spec.check_file(path.relative_to(folder).as_posix())
                if result.include is not None:
                    if not result.include:
                        return None
                    pattern = spec.patterns[result.index].pattern
                    return f"ignored by {folder / '.gitignore'} (pattern {pattern!r})"
            if folder == top or folder == folder.parent:
                return None
            folder = folder.parent

    def forget(self, gitignore: Path) -> None:
        """`gitignore` changed: read it again when next needed."""
        self._specs.pop(gitignore.parent, None)

    def _spec(self, folder: Path) -> pathspec.GitIgnoreSpec | None:
        if folder not in self._specs:
            try:
                lines = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                self._specs[folder] = None
            else:
                self._specs[folder] = pathspec.GitIgnoreSpec.from_lines(
                    [line for line in lines if _parses(line)]
                )
        return self._specs[folder]


def _parses(line: str) -> bool:
    """Git skips a .gitignore line it cannot read (`!`, a trailing backslash); pathspec would raise."""
    try:
        pathspec.GitIgnoreSpec.from_lines([line])
    except ValueError:
        return False
    return True


def read_watched(path: Path, max_bytes: int = MAX_BYTES) -> tuple[str, str]:
    """The text of `path` and its sha256; FileRefused with the reason for a file over `max_bytes`,
    binary or not UTF-8."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise FileRefused(f"cannot read {path}: {e.strerror or e}") from None
    if size > max_bytes:
        raise FileRefused(f"{path} is {size:,} bytes: over the {max_bytes:,}-byte limit (--max-bytes)")
    text, disk = read_text(path)
    return text, disk.sha256


def _repository_top(folder: Path) -> Path:
    """The top of the git repository holding `folder`, or `folder` itself outside one."""
    for candidate in (folder, *folder.parents):
        if (candidate / GIT).exists():
            return candidate
    return folder
