"""The watcher on real filesystem events: bursts coalesce, renames are reported, startup is fast."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from engine.request import GenerationConfig
from nemodiff_tui.watch.session import WatchSession
from nemodiff_tui.watch.watcher import Batch, Watcher
from tests.watch.util import QUIET, settle, wait_until


class Recorder:
    def __init__(self):
        self.batches: list[Batch] = []
        self.lock = threading.Lock()

    def __call__(self, batch: Batch) -> None:
        with self.lock:
            self.batches.append(batch)

    def touched(self) -> set[Path]:
        with self.lock:
            return {p for b in self.batches for p in b.touched}


def started(folder: Path, **options) -> tuple[Watcher, Recorder]:
    recorder = Recorder()
    watcher = Watcher([folder], [], recorder, quiet=QUIET, **options)
    watcher.start()
    return watcher, recorder


def test_a_burst_of_writes_is_one_batch(tmp_path):
    watcher, recorder = started(tmp_path)
    try:
        path = tmp_path / "a.py"
        for i in range(20):
            path.write_text(f"x = {i}\n")
            time.sleep(0.002)
        wait_until(lambda: recorder.batches, what="a batch")
        settle()
        assert len(recorder.batches) == 1 and set(recorder.batches[0].touched) == {path}
    finally:
        watcher.stop()


def test_an_atomic_save_reports_the_rename_onto_the_file(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("old\n")
    watcher, recorder = started(tmp_path)
    try:
        tmp = tmp_path / ".a.py.tmp123"
        tmp.write_text("new\n")
        os.replace(tmp, path)
        wait_until(lambda: path in recorder.touched(), what="the save")
        batch = recorder.batches[0]
        assert (tmp, path) in batch.moves
    finally:
        watcher.stop()


def test_events_inside_git_are_dropped(tmp_path):
    (tmp_path / ".git").mkdir()
    watcher, recorder = started(tmp_path)
    try:
        (tmp_path / ".git" / "index").write_text("x")
        (tmp_path / "a.py").write_text("x")
        wait_until(lambda: recorder.batches, what="a batch")
        settle()
        assert recorder.touched() == {tmp_path / "a.py"}
    finally:
        watcher.stop()


def test_a_busy_tree_cannot_delay_a_batch_past_max_wait(tmp_path):
    watcher, recorder = started(tmp_path, max_wait=0.3)
    try:
        start = time.monotonic()
        while not recorder.batches and time.monotonic() - start < 3:
            (tmp_path / "busy.py").write_text(str(time.monotonic()))
            time.sleep(QUIET / 4)
        assert recorder.batches and time.monotonic() - start < 1.5
    finally:
        watcher.stop()


def test_a_named_file_is_watched_without_its_siblings(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("x\n")
    recorder = Recorder()
    watcher = Watcher([], [path], recorder, quiet=QUIET)
    watcher.start()
    try:
        (tmp_path / "b.py").write_text("y\n")
        tmp = tmp_path / "a.py.tmp"
        tmp.write_text("z\n")
        os.replace(tmp, path)  # replaced by a rename: still watched
        wait_until(lambda: path in recorder.touched(), what="the named file's save")
        settle()
        assert recorder.touched() == {path}
    finally:
        watcher.stop()


def test_startup_on_3000_files_is_under_2_seconds(tmp_path):
    for d in range(60):
        folder = tmp_path / f"pkg{d}" / "sub"
        folder.mkdir(parents=True)
        for f in range(50):
            (folder / f"m{f}.py").write_text("x = 1\n")
    session = WatchSession([tmp_path], GenerationConfig())
    start = time.monotonic()
    session.start()
    elapsed = time.monotonic() - start
    try:
        assert elapsed < 2.0, f"startup took {elapsed:.2f} s"
        path = tmp_path / "pkg59" / "sub" / "m49.py"  # and the deepest folder is watched
        path.write_text("x = <fill>\n")
        wait_until(lambda: session.suggestions, what="a suggestion in the big tree")
    finally:
        session.stop()
