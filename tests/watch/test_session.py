"""Saves seen through real filesystem events, as editors make them, turned into suggestions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading

import pytest

from tests.watch.util import ANSWER, FakeEngine, ready, settle, wait_until


def save_atomically(path, text: str, tmp_name: str) -> None:
    tmp = path.parent / tmp_name
    tmp.write_text(text)
    os.replace(tmp, path)


def test_a_saved_marker_gets_a_suggestion_at_the_marker(tmp_path, watch):
    engine = FakeEngine()
    session = watch(engine=engine)
    path = tmp_path / "a.py"
    path.write_text("def f():\n    # <fill>\n    pass\n")
    wait_until(lambda: ready(session, path), what="a ready suggestion")
    [s] = session.suggestions
    assert (s.line, s.column, s.text, s.hole.rule, s.mode) == (2, 5, ANSWER, "marker", "diffusion")
    assert s.latency is not None and s.latency > 0
    [request] = engine.requests
    assert request.prefix == "def f():\n    " and request.suffix == "\n    pass\n"


def test_first_save_without_marker_is_a_baseline_then_the_diff_rule_applies(tmp_path, watch):
    session = watch()
    path = tmp_path / "a.py"
    path.write_text("a = 1\nb = 2\n")
    wait_until(lambda: any("first save seen" in what for _, what in session.log), what="the baseline note")
    assert session.suggestions == []
    path.write_text("a = 1\nc = compute(\nb = 2\n")
    wait_until(lambda: ready(session, path), what="a diff suggestion")
    [s] = session.suggestions
    assert (s.line, s.column, s.hole.rule) == (2, 13, "diff")


def test_a_file_named_on_the_command_line_is_read_at_startup(tmp_path, watch):
    path = tmp_path / "a.py"
    path.write_text("a = 1\n")
    session = watch(path)
    path.write_text("a = 1\nb = \n")
    wait_until(lambda: ready(session, path), what="a diff suggestion on the first save")
    assert session.suggestions[0].hole.rule == "diff"


def test_removing_the_marker_drops_its_suggestion(tmp_path, watch):
    session = watch()
    path = tmp_path / "a.py"
    path.write_text("x = 1\n# <fill>\ny = 2\n")
    wait_until(lambda: ready(session, path), what="the marker's suggestion")
    old = session.suggestions[0]
    path.write_text("x = 1\ny = 2\n")
    wait_until(lambda: old.status == "stale", what="the old suggestion to go stale")
    settle()
    assert session.suggestions == []  # only a deletion since the marker's version: nothing to fill


def test_a_file_that_fails_to_be_handled_is_logged_and_watching_goes_on(tmp_path, watch, monkeypatch):
    session = watch()
    refresh = session.refresh

    def refuse_bad(path, *args):
        if path.name == "bad.py":
            raise ValueError("something unforeseen")
        return refresh(path, *args)

    monkeypatch.setattr(session, "refresh", refuse_bad)
    (tmp_path / "bad.py").write_text("x = <fill>\n")
    wait_until(lambda: any("not handled: ValueError" in what for _, what in session.log), what="the log line")
    good = tmp_path / "good.py"
    good.write_text("y = <fill>\n")
    wait_until(lambda: ready(session, good), what="a suggestion for the next file")


def test_a_burst_of_writes_makes_one_request(tmp_path, watch):
    engine = FakeEngine()
    session = watch(engine=engine)
    path = tmp_path / "a.py"
    for i in range(25):
        with open(path, "w") as f:  # editors that write in place: truncate, write in pieces
            f.write("x = <fill>\n")
            f.flush()
            f.write(f"# {i}\n")
    wait_until(lambda: ready(session, path), what="the suggestion")
    settle()
    assert len(engine.requests) == 1 and len(session.suggestions) == 1


def test_a_newer_save_cancels_the_older_generation(tmp_path, watch):
    gate = threading.Event()
    engine = FakeEngine(gate=gate)
    session = watch(engine=engine)
    path = tmp_path / "a.py"
    path.write_text("x = <fill>\n")
    wait_until(lambda: engine.generations, what="the first generation")
    first = session.suggestions[0]
    path.write_text("y = <fill>\n")
    wait_until(lambda: engine.generations[0].cancelled.is_set(), what="the first generation to be cancelled")
    gate.set()
    wait_until(lambda: ready(session, path), what="the newer suggestion")
    assert first.status == "stale"
    [s] = session.suggestions
    assert s.source == "y = <fill>\n" and s.text == ANSWER


def test_vim_save_dance_keeps_the_file_state(tmp_path, watch):
    """vim: probe 4913, rename the file to file~, write a new file, delete the backup."""
    path = tmp_path / "a.py"
    path.write_text("a = 1\n")
    session = watch(path.parent)
    path.write_text("a = 1\nb = 2\n")  # first save: baseline (the folder's files are read on first save)
    wait_until(lambda: session.log, what="the baseline")
    probe = tmp_path / "4913"
    probe.write_text("")
    probe.unlink()
    backup = tmp_path / "a.py~"
    os.rename(path, backup)
    path.write_text("a = 1\nb = 2\nc = \n")
    backup.unlink()
    wait_until(lambda: ready(session, path), what="the diff suggestion")
    settle()
    [s] = session.suggestions
    assert (s.path, s.line, s.hole.rule) == (path, 3, "diff")
    assert session.skipped == {}


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim is not installed")
@pytest.mark.parametrize("options", ["set backupcopy=auto", "set backupcopy=no", "set backupcopy=yes"])
def test_a_real_vim_save(tmp_path, watch, options):
    session = watch()
    path = tmp_path / "a.py"
    path.write_text("def f():\n    pass\n")  # first save: the baseline
    wait_until(lambda: session.log, what="the baseline")
    subprocess.run(
        [
            "vim",
            "-u",
            "NONE",
            "-i",
            "NONE",
            "-N",
            "-es",
            "-c",
            options,
            "-c",
            "normal Goy = ",
            "-c",
            "wq",
            str(path),
        ],
        check=True,
        timeout=10,
    )
    wait_until(lambda: ready(session, path), what="the suggestion")
    settle()
    assert [(s.line, s.column, s.hole.rule) for s in session.suggestions] == [(3, 5, "diff")]
    assert session.skipped == {}


def test_jetbrains_safe_write(tmp_path, watch):
    session = watch()
    path = tmp_path / "A.kt"
    path.write_text("val a = 1\n")
    wait_until(lambda: session.log, what="the baseline")
    tmp, old = tmp_path / "A.kt___jb_tmp___", tmp_path / "A.kt___jb_old___"
    tmp.write_text("val a = 1\nval b = \n")
    os.rename(path, old)
    os.rename(tmp, path)
    old.unlink()
    wait_until(lambda: ready(session, path), what="the suggestion")
    settle()
    assert [(s.path, s.line) for s in session.suggestions] == [(path, 2)]
    assert session.skipped == {}


def test_temp_then_rename_save(tmp_path, watch):
    session = watch()
    path = tmp_path / "a.py"
    save_atomically(path, "x = <fill>\n", ".a.py.swx1")
    wait_until(lambda: ready(session, path), what="the suggestion")
    settle()
    assert [s.path for s in session.suggestions] == [path]


def test_files_it_will_not_read_are_skipped_with_a_reason(tmp_path, watch):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("build/\n")
    session = watch(max_bytes=1000)
    (tmp_path / "build").mkdir()
    files = {
        "img.bin": (b"\x89PNG\x00\x00<fill>", "binary"),
        "latin.py": (b"caf\xe9 = '<fill>'\n", "not UTF-8"),
        "huge.py": (b"x = '<fill>'\n" + b"#" * 2000, "over the 1,000-byte limit"),
        "build/out.py": (b"x = <fill>\n", "ignored by"),
        ".a.py.swp": (b"<fill>", "vim swap file"),
        "a.py~": (b"x = <fill>\n", "backup file"),
    }
    for name, (data, _) in files.items():
        (tmp_path / name).write_bytes(data)
    wait_until(lambda: len(session.skipped) == len(files) + 1, what="every skip")
    for name, (_, why) in files.items():
        assert why in session.skipped[tmp_path / name]
    assert "git's own folder" in session.skipped[tmp_path / ".git"]
    assert any("skipped: " in what for _, what in session.log)
    settle()
    assert session.suggestions == []


def test_a_deleted_file_loses_its_suggestions(tmp_path, watch):
    session = watch()
    path = tmp_path / "a.py"
    path.write_text("x = <fill>\n")
    wait_until(lambda: ready(session, path), what="the suggestion")
    s = session.suggestions[0]
    path.unlink()
    wait_until(lambda: not session.suggestions, what="the suggestions to go")
    assert s.status == "stale" and (path, "deleted") in session.log


def test_a_renamed_file_takes_its_suggestions_along(tmp_path, watch):
    engine = FakeEngine()
    session = watch(engine=engine)
    path, renamed = tmp_path / "a.py", tmp_path / "b.py"
    path.write_text("x = <fill>\n")
    wait_until(lambda: ready(session, path), what="the suggestion")
    os.rename(path, renamed)
    wait_until(lambda: ready(session, renamed), what="the suggestion to move")
    settle()
    assert len(session.suggestions) == 1 and len(engine.requests) == 1  # the same one, not computed again
    assert (renamed, f"renamed from {path}") in session.log


def test_a_failing_engine_marks_the_suggestion_failed(tmp_path, watch):
    def broken(request):
        raise RuntimeError("out of memory")

    session = watch(engine=FakeEngine(answer=broken))
    (tmp_path / "a.py").write_text("x = <fill>\n")
    wait_until(lambda: session.suggestions and session.suggestions[0].status == "failed", what="the failure")
    assert "out of memory" in session.suggestions[0].error


def test_the_watch_core_is_headless():
    """Like the engine, watch mode's core runs (and --once prints) without importing Textual."""
    code = (
        "import sys, nemodiff_tui.watch.session, nemodiff_tui.cli.watch; "
        "assert not [m for m in sys.modules if m.startswith('textual')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
