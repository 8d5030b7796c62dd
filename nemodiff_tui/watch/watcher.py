"""Filesystem events, turned into one batch per save however the editor saved.

Editors save in many steps: write in place (several modify events), write a temporary file and
rename it over the original (VS Code, JetBrains, nemodiff itself), or vim's dance (probe file
`4913`, rename the original to `file~`, write a new file, delete the backup). Every event only
marks its paths as touched; once the tree has been quiet for `quiet` seconds (or `max_wait` after
the first event, so a busy tree cannot starve a save) the touched paths and the renames go out as
one `Batch`, and the receiver looks at what is on disk then. The temporary files of an atomic save
are gone by then, and the destination of the rename is what was saved.

Startup schedules the watches and reads nothing, so thousands of files start in well under a second.
Events inside `.git` are dropped before they can delay a batch.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from nemodiff_tui.watch.ignore import in_git_folder

QUIET = 0.15  # seconds without events before a batch goes out
MAX_WAIT = 1.0  # seconds after a batch's first event at the latest
# Opened/closed-without-write events are left out: reading a file must not look like a save.
EVENTS = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


@dataclass
class Batch:
    """What happened during one burst of events."""

    touched: dict[Path, float] = field(default_factory=dict)  # path -> monotonic time of its first event
    moves: list[tuple[Path, Path]] = field(default_factory=list)  # (source, destination), in order


class Watcher(FileSystemEventHandler):
    """Watches `folders` recursively and `files` (through their folders, so a file replaced by a
    rename stays watched); calls `on_batch` on its own thread."""

    def __init__(
        self,
        folders: Sequence[Path],
        files: Sequence[Path],
        on_batch: Callable[[Batch], None],
        quiet: float = QUIET,
        max_wait: float = MAX_WAIT,
    ):
        super().__init__()
        self.folders = list(folders)
        self.files = set(files)
        self.on_batch = on_batch
        self.quiet = quiet
        self.max_wait = max_wait
        self._observer = Observer()
        self._cond = threading.Condition()
        self._batch = Batch()
        self._last = 0.0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="watch-batches", daemon=True)

    def start(self) -> None:
        for folder in self.folders:
            self._observer.schedule(self, str(folder), recursive=True, event_filter=EVENTS)
        for parent in {f.parent for f in self.files if not self._in_folders(f)}:
            self._observer.schedule(self, str(parent), recursive=False, event_filter=EVENTS)
        self._observer.start()
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def on_any_event(self, event: FileSystemEvent) -> None:
        src = Path(os.fsdecode(event.src_path))
        dest = Path(os.fsdecode(event.dest_path)) if event.dest_path else None
        paths = [p for p in (src, dest) if p is not None and self._wanted(p)]
        if not paths:
            return
        now = time.monotonic()
        with self._cond:
            for path in paths:
                self._batch.touched.setdefault(path, now)
            if (
                dest is not None and len(paths) == 2
            ):  # a rename out of (or into) the watch is a delete (or a save)
                self._batch.moves.append((src, dest))
            self._last = now
            self._cond.notify()

    def _wanted(self, path: Path) -> bool:
        return not in_git_folder(path) and (path in self.files or self._in_folders(path))

    def _in_folders(self, path: Path) -> bool:
        return any(path.is_relative_to(folder) for folder in self.folders)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._batch.touched:
                        due = min(self._last + self.quiet, min(self._batch.touched.values()) + self.max_wait)
                        wait = due - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                batch, self._batch = self._batch, Batch()
            self.on_batch(batch)
