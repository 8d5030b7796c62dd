"""Reading and saving the user's files without ever losing a byte of them.

Only UTF-8 text up to `MAX_BYTES` is opened (anything else is refused with a reason, the file
untouched). A save writes a temporary file next to the target, fsyncs it and renames it over the
target, so a full disk or a crash leaves the original intact; the target's mode, owner and group
are kept, and a read-only file is never written. What was on disk at open/save time
is remembered, so a save can refuse to overwrite changes made by someone else.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 4 * 1024 * 1024
NEW_FILE_MODE = 0o644  # mkstemp's 0o600 would hide a new file from others


class FileRefused(Exception):
    """A file the editor will not open, with the reason as its message."""


@dataclass(frozen=True)
class DiskState:
    """What a file looked like on disk: compared before a save to detect outside changes."""

    mtime_ns: int
    size: int
    sha256: str


def read_text(path: Path) -> tuple[str, DiskState]:
    """The text of `path` and its disk state; FileRefused for huge, binary or non-UTF-8 files."""
    too_big = f"files over {MAX_BYTES // 2**20} MiB are not opened"
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block the read, or never end
            raise FileRefused(f"{path} is not a regular file: not opened")
        if st.st_size > MAX_BYTES:
            raise FileRefused(f"{path} is {st.st_size / 1e6:.1f} MB: {too_big}")
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise FileRefused(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_BYTES:  # it grew after the size check
        raise FileRefused(f"{path} is over {MAX_BYTES // 2**20} MiB: {too_big}")
    if b"\0" in data:
        raise FileRefused(f"{path} looks binary (it contains NUL bytes): not opened")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileRefused(
            f"{path} is not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}): not opened"
        ) from None
    return text, _state(path, data)


def disk_state(path: Path) -> DiskState | None:
    """The current disk state of `path`, None when it does not exist."""
    try:
        return _state(path, path.read_bytes())
    except FileNotFoundError:
        return None


def changed_on_disk(path: Path, known: DiskState | None) -> bool:
    """Has `path` changed since it was `known` (None: since we knew it did not exist)?

    mtime and size settle the common case; a differing mtime alone (a touch) is checked by content.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return known is not None
    if known is None:
        return True
    if st.st_size != known.size:
        return True
    if st.st_mtime_ns == known.mtime_ns:
        return False
    return hashlib.sha256(path.read_bytes()).hexdigest() != known.sha256


def read_only(path: Path) -> bool:
    """Is `path` a file the user may not write? A rename over it would succeed anyway (it needs
    only the directory's permission), so a save must ask this first. Root may write anything, so
    for root a file without any write bit (0o444) counts as read-only too."""
    target = Path(os.path.realpath(path))
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return False
    effective = os.access in os.supports_effective_ids  # the ids a write would run under
    return not os.access(target, os.W_OK, effective_ids=effective) or not mode & 0o222


def atomic_write(path: Path, text: str) -> DiskState:
    """Write `text` to `path` atomically (temp file in the same directory, fsync, rename).

    Keeps the file's permissions, owner and group and writes through a symlink to its target. A
    file whose owner or group the rename cannot keep (someone else's file in a shared group), or
    that has hard links, is rewritten in place instead, as vim does: only that way is it still
    the same file. On any OSError the temporary file is removed and the original is untouched.
    """
    target = Path(os.path.realpath(path))
    data = text.encode("utf-8")
    try:
        st: os.stat_result | None = target.stat()
    except FileNotFoundError:
        st = None
    if st is not None and st.st_nlink > 1:
        return _write_in_place(target, data)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".nemodiff-tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st else NEW_FILE_MODE)
        if st is not None and not _same_owner(tmp, st):
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError:
                Path(tmp).unlink()
                return _write_in_place(target, data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return _state(target, data)


def _same_owner(path: str, st: os.stat_result) -> bool:
    mine = os.stat(path)
    return (mine.st_uid, mine.st_gid) == (st.st_uid, st.st_gid)


def _write_in_place(target: Path, data: bytes) -> DiskState:
    """Overwrite the file itself (its inode, so owner, mode and links stay): not atomic."""
    with target.open("r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
    return _state(target, data)


def _state(path: Path, data: bytes) -> DiskState:
    st = path.stat()
    return DiskState(st.st_mtime_ns, st.st_size, hashlib.sha256(data).hexdigest())


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; some filesystems cannot fsync a directory, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
