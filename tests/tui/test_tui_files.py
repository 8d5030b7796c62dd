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


def test_read_only_files_are_recognised(tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    assert not files.read_only(path) and not files.read_only(tmp_path / "new.py")
    path.chmod(0o444)
    assert files.read_only(path)  # also for root, who could write it


@pytest.mark.skipif(os.geteuid() != 0, reason="changing users needs root")
def test_a_file_of_another_user_is_read_only_for_them_and_keeps_its_owner(tmp_path: Path):
    import tempfile

    directory = Path(tempfile.mkdtemp())
    try:
        directory.chmod(0o777)  # the rename a save does needs only this
        path = directory / "a.py"
        path.write_text("x = 1\n")
        path.chmod(0o644)
        os.seteuid(65534)
        try:
            assert files.read_only(path)  # root's file: nobody may not overwrite it
        finally:
            os.seteuid(0)
        os.chown(path, 65534, 65534)
        path.chmod(0o640)
        atomic_write(path, "x = 2\n")
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o640)
        assert path.read_text() == "x = 2\n"
        os.chown(path, 65534, 0)  # nobody's file in root's group: nobody cannot give a new file that group
        os.seteuid(65534)
        try:
            atomic_write(path, "x = 3\n")  # so it is rewritten in place
        finally:
            os.seteuid(0)
        st = path.stat()
        assert (st.st_uid, st.st_gid, path.read_text()) == (65534, 0, "x = 3\n")
        assert [p.name for p in directory.iterdir()] == ["a.py"]
    finally:
        for child in directory.iterdir():
            child.unlink()
        directory.rmdir()


def test_a_hard_linked_file_is_written_in_place(tmp_path: Path):
    path, other = tmp_path / "a.py", tmp_path / "b.py"
    path.write_text("x = 1\n")
    os.link(path, other)
    atomic_write(path, "x = 2\n")
    assert other.read_text() == "x = 2\n" and path.stat().st_ino == other.stat().st_ino
