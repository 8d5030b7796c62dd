"""Opening and saving never loses the user's bytes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from nemodiff_tui import files
from nemodiff_tui.files import FileRefused, atomic_write, changed_on_disk, read_text


def test_round_trip_keeps_text_and_mode(tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_text("x = 1\r\n", encoding="utf-8", newline="")
    path.chmod(0o640)
    text, state = read_text(path)
    assert text == "x = 1\r\n"
    new = atomic_write(path, "x = 2\r\n")
    assert path.read_bytes() == b"x = 2\r\n" and (path.stat().st_mode & 0o777) == 0o640
    assert not changed_on_disk(path, new) and changed_on_disk(path, state)
    assert [p.name for p in tmp_path.iterdir()] == ["a.py"]  # no temporary file left


def test_changes_on_disk_are_noticed_but_a_touch_is_not(tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_text("one\n")
    _, state = read_text(path)
    os.utime(path, ns=(state.mtime_ns + 10**9, state.mtime_ns + 10**9))
    assert not changed_on_disk(path, state)
    path.write_text("two\n")
    assert changed_on_disk(path, state)
    path.unlink()
    assert changed_on_disk(path, state)
    assert not changed_on_disk(path, None)


def test_writes_through_a_symlink(tmp_path: Path):
    target = tmp_path / "real.py"
    target.write_text("a\n")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    atomic_write(link, "b\n")
    assert link.is_symlink() and target.read_text() == "b\n"


@pytest.mark.parametrize("data, reason", [(b"\x00\x01binary", "binary"), (b"caf\xe9\n", "not UTF-8")])
def test_refuses_what_it_cannot_edit(tmp_path: Path, data: bytes, reason: str):
    path = tmp_path / "f"
    path.write_bytes(data)
    with pytest.raises(FileRefused, match=reason):
        read_text(path)
    assert path.read_bytes() == data


def test_refuses_huge_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(files, "MAX_BYTES", 10)
    path = tmp_path / "big.py"
    path.write_text("x" * 11)
    with pytest.raises(FileRefused, match="not opened"):
        read_text(path)


def test_full_disk_leaves_the_original_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "a.py"
    path.write_text("original\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        atomic_write(path, "new\n")
    assert path.read_text() == "original\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.py"]
