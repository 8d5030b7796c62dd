"""Accepting writes exactly the suggestion at the hole, atomically, and never over a newer save."""

from __future__ import annotations

import stat

from nemodiff_tui.watch.accept import accept_suggestion
from tests.watch.util import ANSWER, FakeEngine, ready, settle, wait_until


def test_accept_writes_exactly_the_suggestion_at_the_marker(tmp_path, watch):
    path = tmp_path / "a.py"
    before = "# café\r\ndef f(x):\r\n    # <fill>\r\n    pass\r\n"
    path.write_bytes(b"")
    path.chmod(0o640)
    session = watch(engine=FakeEngine(answer=lambda request: "y = x\n    return y"))
    path.write_bytes(before.encode())
    wait_until(lambda: ready(session, path), what="the suggestion")
    s = session.suggestions[0]
    assert session.accept(s) == "a.py: line 3: suggestion written"
    expected = "# café\r\ndef f(x):\r\n    y = x\r\n    return y\r\n    pass\r\n".encode()
    assert path.read_bytes() == expected
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert s.status == "accepted" and session.suggestions == []
    assert [p.name for p in tmp_path.iterdir()] == ["a.py"]  # no temporary file left


def test_accepting_one_marker_recomputes_the_others_from_the_new_text(tmp_path, watch):
    engine = FakeEngine()
    session = watch(engine=engine)
    path = tmp_path / "a.py"
    path.write_text("a = <fill>\nb = <fill>\n")
    wait_until(lambda: len(ready(session, path)) == 2, what="two suggestions")
    first, second = session.suggestions
    session.accept(first)
    assert path.read_text() == f"a = {ANSWER}\nb = <fill>\n"
    assert second.status == "stale"
    wait_until(lambda: ready(session, path), what="the recomputed suggestion")
    [again] = session.suggestions
    assert again.source == path.read_text() and (again.line, again.column) == (2, 5)
    settle()  # the accept's own write comes back as an event: no change, nothing new
    assert len(engine.requests) == 3 and session.suggestions == [again]


def test_accepting_never_triggers_the_diff_rule_on_its_own_write(tmp_path, watch):
    engine = FakeEngine()
    session = watch(engine=engine)
    path = tmp_path / "a.py"
    path.write_text("x = <fill>\n")
    wait_until(lambda: ready(session, path), what="the suggestion")
    session.accept(session.suggestions[0])
    settle()
    assert session.suggestions == [] and len(engine.requests) == 1


def test_race_file_changed_between_suggestion_and_accept_is_not_overwritten(tmp_path, watch):
    """The user saves again just before pressing accept, before the watcher has seen that save."""
    engine = FakeEngine()
    session = watch(engine=engine, quiet=5.0)  # the watcher stays behind: only accept can notice
    path = tmp_path / "a.py"
    path.write_text("x = <fill>\n")
    session.refresh(path)
    wait_until(lambda: ready(session, path), what="the suggestion")
    s = session.suggestions[0]
    newer = "x = <fill>\nz = 3\n"
    path.write_text(newer)
    message = session.accept(s)
    assert "changed since the suggestion: nothing written" in message
    assert path.read_text() == newer
    assert s.status == "stale"
    wait_until(lambda: ready(session, path), what="the recomputed suggestion")
    [again] = session.suggestions
    assert again.source == newer and again is not s


def test_accept_refuses_a_changed_or_deleted_file_without_writing(tmp_path, watch):
    session = watch()
    path = tmp_path / "a.py"
    path.write_text("x = <fill>\n")
    wait_until(lambda: ready(session, path), what="the suggestion")
    s = session.suggestions[0]
    path.write_text("changed\n")
    assert accept_suggestion(s).status == "stale" and path.read_text() == "changed\n"
    path.unlink()
    s.status = "ready"
    assert accept_suggestion(s).status == "missing" and not path.exists()


def test_a_full_disk_on_accept_is_a_message_and_the_suggestion_stays(tmp_path, watch, monkeypatch):
    import errno
    import os

    session = watch()
    path = tmp_path / "a.py"
    path.write_text("x = <fill>\n")
    wait_until(lambda: ready(session, path), what="the suggestion")
    s = session.suggestions[0]

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    assert session.accept(s) == "a.py: line 1: not written: No space left on device"
    assert path.read_text() == "x = <fill>\n" and s.status == "ready" and session.suggestions == [s]
    assert [p.name for p in tmp_path.iterdir()] == ["a.py"]
    monkeypatch.undo()
    assert session.accept(s) == "a.py: line 1: suggestion written"


def test_only_a_ready_suggestion_can_be_accepted(tmp_path, watch):
    session = watch()
    path = tmp_path / "a.py"
    path.write_text("x = <fill>\n")
    wait_until(lambda: ready(session, path), what="the suggestion")
    s = session.suggestions[0]
    session.reject(s)
    assert s.status == "rejected" and session.suggestions == []
    assert "rejected: nothing written" in session.accept(s)
    assert path.read_text() == "x = <fill>\n"
