"""Watch mode without the UI: which files are watched, what each one looked like when last seen,
and the suggestions offered for them.

A save is read once its burst of events is over. Content equal to what was last seen is no
change. Otherwise the file's open suggestions are replaced: its markers are the holes, or, without
a marker, the end of the region changed since the last seen version. A file is seen for the first
time at its first save (files named on the command line: at startup), so its first save uses
markers only. Deleted files lose their suggestions; renamed files take theirs along.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.request import GenerationConfig
from nemodiff_tui.config import Settings
from nemodiff_tui.engine_factory import CompletionEngine
from nemodiff_tui.files import FileRefused
from nemodiff_tui.watch import WatchError
from nemodiff_tui.watch.accept import accept_suggestion
from nemodiff_tui.watch.holes import MARKER, check_marker, diff_hole, find_markers
from nemodiff_tui.watch.ignore import GIT, MAX_BYTES, GitIgnore, editor_file_reason, read_watched
from nemodiff_tui.watch.suggestions import Suggestion, Worker
from nemodiff_tui.watch.watcher import Batch, Watcher

Listener = Callable[[Suggestion | None], None]  # a suggestion that changed; None: the list, skips or log


@dataclass(frozen=True)
class Seen:
    """A file's text when watch mode last read (or wrote) it."""

    text: str
    sha256: str


class WatchSession:
    """The watched paths, each file's last-seen text, the open suggestions and what was skipped.
    Thread-safe: the watcher, the worker and the UI call in from their own threads."""

    def __init__(
        self,
        paths: Sequence[Path],
        config: GenerationConfig,
        *,
        marker: str = MARKER,
        max_bytes: int = MAX_BYTES,
        settings: Settings | None = None,
        quiet: float | None = None,
        on_change: Listener | None = None,
    ):
        """Check the paths and options; nothing is watched or read until `start`."""
        check_marker(marker)
        paths = [Path(p).expanduser().absolute() for p in paths]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise WatchError(f"no such file or folder: {', '.join(missing)}")
        settings = settings or Settings()
        self.folders = [p for p in paths if p.is_dir()]
        self.files = [p for p in paths if not p.is_dir()]
        self.marker = marker
        self.max_bytes = max_bytes
        self.context_chars = settings.context_chars
        self.on_change = on_change or (lambda s: None)  # may be set later (the app sets it)
        self.skipped: dict[Path, str] = {}
        self.rejected: list[Suggestion] = []  # what `retry` asks again for, the latest last
        self.log: deque[tuple[Path, str]] = deque(maxlen=500)  # what happened, newest last
        self._seen: dict[Path, Seen] = {}
        self._suggestions: list[Suggestion] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._gitignore = GitIgnore(self.folders)
        self._worker = Worker(config, settings.max_lines, lambda s: self.on_change(s))
        watcher_options = {} if quiet is None else {"quiet": quiet}
        self._watcher = Watcher(self.folders, self.files, self.handle, **watcher_options)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Watch; read the named files (for the diff rule), never the folders' files."""
        self._watcher.start()
        for folder in self.folders:
            if (folder / GIT).is_dir():
                self._skip(folder / GIT, "git's own folder: never watched")
        for path in self.files:
            self._read(path)

    def stop(self) -> None:
        self._watcher.stop()
        self._worker.close()

    def set_engine(self, engine: CompletionEngine) -> None:
        """Generate with `engine` from now on (saves before it is set wait in the queue)."""
        self._worker.set_engine(engine)

    @property
    def suggestions(self) -> list[Suggestion]:
        with self._lock:
            return list(self._suggestions)

    # --- saves ----------------------------------------------------------------------------------

    def handle(self, batch: Batch) -> None:
        """One burst of events (called on the watcher's thread)."""
        with self._lock:
            for src, dest in batch.moves:
                if not src.exists() and dest.exists():
                    self._move(src, dest)
            for path, saved_at in batch.touched.items():
                try:
                    self._touched(path, saved_at)
                except Exception as e:  # one odd file must not end the watcher's thread
                    self.log.append((path, f"not handled: {type(e).__name__}: {e}"))
        self.on_change(None)

    def _touched(self, path: Path, saved_at: float) -> None:
        if path.name == ".gitignore":
            self._gitignore.forget(path)
        if path.is_dir():
            return
        if path.exists():
            self.refresh(path, saved_at)
        else:
            self._drop(path, "deleted")

    def refresh(self, path: Path, saved_at: float | None = None) -> None:
        """Read `path` and replace its suggestions when it changed since last seen."""
        with self._lock:
            reason = self._path_reason(path)
            if reason is not None:
                self._skip(path, reason)
                return
            previous = self._seen.get(path)
            current = self._read(path)
            if current is None or current == previous:
                return
            new = self._offer(
                path, current, time.monotonic() if saved_at is None else saved_at, diff_from=previous
            )
            if new:
                rule = "marker" if new[0].hole.rule == "marker" else "changed region"
                self.log.append((path, f"saved: {len(new)} hole{'s' * (len(new) > 1)} ({rule})"))
            elif previous is None:
                self.log.append(
                    (
                        path,
                        f"first save seen, no {self.marker} marker: later saves get a suggestion "
                        "at the end of the changed region",
                    )
                )
            else:
                self.log.append((path, "saved: only deletions, nothing to fill"))

    def _path_reason(self, path: Path) -> str | None:
        """Why a file is skipped by its name: a named file only for being an editor's file."""
        return editor_file_reason(path.name) or (None if path in self.files else self._gitignore.reason(path))

    def _read(self, path: Path) -> Seen | None:
        try:
            text, sha256 = read_watched(path, self.max_bytes)
        except FileRefused as e:
            self._skip(path, str(e))
            self._forget(path)
            return None
        if self.skipped.pop(path, None) is not None:
            self.log.append((path, "watched again"))
        seen = self._seen[path] = Seen(text, sha256)
        return seen

    def _offer(self, path: Path, current: Seen, saved_at: float, diff_from: Seen | None) -> list[Suggestion]:
        """Replace the file's open suggestions with one per hole of `current`: its markers, or else
        the diff hole against `diff_from` (None: markers only)."""
        self._forget(path)
        holes = find_markers(current.text, self.marker)
        if not holes and diff_from is not None:
            hole = diff_hole(diff_from.text, current.text)
            holes = [hole] if hole is not None else []
        new = [
            Suggestion.at(
                next(self._ids), path, current.text, current.sha256, hole, self.context_chars, saved_at
            )
            for hole in holes
        ]
        self._suggestions.extend(new)
        self._worker.submit(new)
        return new

    def _forget(self, path: Path) -> None:
        """Cancel and drop the file's open suggestions."""
        old = [s for s in self._suggestions if s.path == path]
        self._worker.cancel(old)
        self._suggestions = [s for s in self._suggestions if s.path != path]

    def _drop(self, path: Path, why: str) -> None:
        """`path` (a file or a folder) is gone: forget everything at or under it."""
        gone = {p for p in self._seen if p == path or p.is_relative_to(path)}
        gone |= {s.path for s in self._suggestions if s.path == path or s.path.is_relative_to(path)}
        for p in gone:
            self._seen.pop(p, None)
            self._forget(p)
            self.log.append((p, why))
        for p in [p for p in self.skipped if p == path or p.is_relative_to(path)]:
            del self.skipped[p]

    def _move(self, src: Path, dest: Path) -> None:
        """A file or folder was renamed: its state and suggestions follow, unless the destination
        already has its own (an atomic save renames a temporary file over a known file)."""
        for p in [p for p in self._seen if p == src or p.is_relative_to(src)]:
            target = dest / p.relative_to(src)
            if target not in self._seen:
                self._seen[target] = self._seen.pop(p)
                for s in self._suggestions:
                    if s.path == p:
                        s.path = target
                self.log.append((target, f"renamed from {p}"))

    def _skip(self, path: Path, reason: str) -> None:
        if self.skipped.get(path) != reason:
            self.skipped[path] = reason
            self.log.append((path, f"skipped: {reason}"))

    # --- the user's answers ---------------------------------------------------------------------

    def accept(self, s: Suggestion) -> str:
        """Write `s` into its file if the file still holds the text `s` was computed from; otherwise
        mark it stale and compute the file's suggestions again. Returns what happened, for the user."""
        with self._lock:
            if s.status != "ready":
                return f"{s.path.name}: line {s.line} is {s.status}: nothing written"
            try:
                outcome = accept_suggestion(s)
            except OSError as e:  # a full disk, a read-only folder: the file is untouched, `s` stays ready
                outcome, why = None, e.strerror or str(e)
            if outcome is None:
                what = f"line {s.line}: not written: {why}"
            elif outcome.status == "accepted":
                self._suggestions.remove(s)
                self._seen[s.path] = Seen(
                    outcome.text, outcome.sha256
                )  # the file's other markers, recomputed:
                self._offer(s.path, self._seen[s.path], time.monotonic(), diff_from=None)
                what = f"line {s.line}: suggestion written"
            elif outcome.status == "missing":
                self._drop(s.path, "deleted")
                what = "deleted since the suggestion: nothing written"
            else:
                self.refresh(s.path)
                what = "changed since the suggestion: nothing written, computing it again"
            self.log.append((s.path, what))
        self.on_change(None)
        return f"{s.path.name}: {what}"

    def reject(self, s: Suggestion) -> None:
        with self._lock:
            if s in self._suggestions:
                self._worker.cancel([s])
                s.status = "rejected"
                self._suggestions.remove(s)
                self.rejected.append(s)
        self.on_change(None)

    def retry(self) -> str:
        """Ask again, sampled, where the last suggestion was rejected (while its file is unchanged).
        Returns what happened, for the user."""
        with self._lock:
            if not self.rejected:
                return "Nothing rejected to retry"
            old = self.rejected.pop()
            seen = self._seen.get(old.path)
            if seen is None or seen.sha256 != old.sha256:
                return f"{old.path.name} changed since: its next save gets a new suggestion"
            new = Suggestion.at(
                next(self._ids),
                old.path,
                old.source,
                old.sha256,
                old.hole,
                self.context_chars,
                time.monotonic(),
            )
            new.seed = (old.seed or 0) + 1
            self._suggestions.append(new)
            self._worker.submit([new])
            self.log.append((old.path, f"line {old.line}: suggesting again (sampled)"))
        self.on_change(None)
        return f"{old.path.name}: line {old.line}: suggesting again"
