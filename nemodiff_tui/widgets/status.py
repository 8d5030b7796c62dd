"""The status line: model (with a progress bar while it loads), mode, suggestion and cursor."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class StatusBar(Horizontal):
    def compose(self) -> ComposeResult:
        yield Label(id="status-text")
        yield ProgressBar(id="load-progress", show_eta=False)

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False

    def show(self, text: str) -> None:
        label = self.query_one(Label)
        if str(label.content) != text:
            label.update(text)

    def progress(self, done: int, total: int) -> None:
        """Show model loading progress; `done == total` hides the bar."""
        bar = self.query_one(ProgressBar)
        bar.display = done < total
        bar.update(total=total, progress=done)
