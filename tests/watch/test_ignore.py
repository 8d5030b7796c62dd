"""What watch mode skips, each with a reason: editors' files, .gitignore, huge, binary, non-UTF-8."""

from __future__ import annotations

import pytest

from nemodiff_tui.files import FileRefused
from nemodiff_tui.watch.ignore import GitIgnore, editor_file_reason, in_git_folder, read_watched


@pytest.mark.parametrize(
    "name",
    [
        ".a.py.swp",
        ".a.py.swo",
        "a.py~",
        "4913",
        "5036",
        ".#a.py",
        "#a.py#",
        "a.py___jb_tmp___",
        "a.py___jb_old___",
        ".a.py.kate-swp",
        ".goutputstream-X1Y2Z3",
        ".a.py.k2j3.nemodiff-tmp",
    ],
)
def test_editor_swap_backup_and_temporary_files_have_a_reason(name):
    assert editor_file_reason(name)


@pytest.mark.parametrize("name", ["a.py", "4914", "123", "swp.py", "notes.txt", "a#b.py"])
def test_ordinary_files_are_not_editor_files(name):
    assert editor_file_reason(name) is None


def test_git_folders(tmp_path):
    assert in_git_folder(tmp_path / ".git" / "index")
    assert not in_git_folder(tmp_path / "src" / "a.git.py")


def test_gitignore_rules_nest_and_negate_as_in_git(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("build/\n*.log\n")
    sub = tmp_path / "src"
    sub.mkdir()
    (sub / ".gitignore").write_text("!keep.log\ngenerated_*.py\n")
    rules = GitIgnore([sub])  # the repository's top .gitignore applies to a watched sub-folder too
    assert "pattern 'build/'" in rules.reason(sub / "build" / "x.py")
    assert str(tmp_path / ".gitignore") in rules.reason(sub / "debug.log")
    assert rules.reason(sub / "keep.log") is None
    assert "generated_*.py" in rules.reason(sub / "generated_api.py")
    assert rules.reason(sub / "main.py") is None
    assert rules.reason(tmp_path / "elsewhere" / "x.log") is None  # outside the watched folders


def test_lines_git_cannot_read_are_skipped_as_git_skips_them(tmp_path):
    (tmp_path / ".gitignore").write_text("!\nfoo\\\n*.log\n")
    assert "pattern '*.log'" in GitIgnore([tmp_path]).reason(tmp_path / "debug.log")


def test_a_changed_gitignore_is_read_again_after_forget(tmp_path):
    (tmp_path / ".gitignore").write_text("*.tmp.py\n")
    rules = GitIgnore([tmp_path])
    assert rules.reason(tmp_path / "a.tmp.py")
    (tmp_path / ".gitignore").write_text("")
    rules.forget(tmp_path / ".gitignore")
    assert rules.reason(tmp_path / "a.tmp.py") is None


def test_read_watched_gives_text_and_sha256(tmp_path):
    path = tmp_path / "a.py"
    path.write_bytes("é = 1\n".encode())
    text, sha = read_watched(path)
    assert text == "é = 1\n" and len(sha) == 64


@pytest.mark.parametrize(
    "data, why",
    [(b"\x00\x01\x02abc", "binary"), (b"caf\xe9\n", "not UTF-8"), (b"x" * 101, "over the 100-byte limit")],
)
def test_read_watched_refuses_with_a_reason(tmp_path, data, why):
    path = tmp_path / "f.py"
    path.write_bytes(data)
    with pytest.raises(FileRefused, match=why):
        read_watched(path, max_bytes=100)
