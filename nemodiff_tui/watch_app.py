"""The watch app: suggestions for files saved in another editor, denoising live beside the list.

Everything happens in a started `WatchSession` (headless; its owner starts and stops it); its
worker and watcher threads report through `post_message`, and the app redraws. The denoising view
follows the running generation, or, when none runs, the selected suggestion (to replay it). The
only key that writes a file is `a`, through `WatchSession.accept` (atomic, and only over the exact
text the suggestion was computed from). Shares the main app's stylesheet, themes and denoising view.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, OptionList, Static

from nemodiff_tui.config import Settings
from nemodiff_tui.engine_factory import EngineFactory
from nemodiff_tui.messages import ModelFailed, ModelLoaded, ModelProgress
from nemodiff_tui.themes import ThemedApp
from nemodiff_tui.watch.session import WatchSession
from nemodiff_tui.watch.suggestions import Suggestion
from nemodiff_tui.widgets.denoise_view import DenoiseView
from nemodiff_tui.widgets.status import StatusBar
from nemodiff_tui.widgets.watch_list import SuggestionDetail, SuggestionList, display_path

LOG_LINES = 4


class WatchChanged(Message):
    """The session changed: `suggestion` advanced or changed status (None: the list, skips or log)."""

    def __init__(self, suggestion: Suggestion | None):
        super().__init__()
        self.suggestion = suggestion


def count(n: int, noun: str) -> str:
    """`1 folder`, `2 folders`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class WatchApp(ThemedApp):
    CSS_PATH = "nemodiff.tcss"
    TITLE = "nemodiff watch"
    CSS = """
    #watch-main { height: 1fr; }
    SuggestionList { width: 45%; height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    #detail-scroll { width: 1fr; height: 1fr; padding: 0 1; }
    #activity { height: auto; max-height: 4; padding: 0 1; color: $text-muted; background: $surface; }
    """
    BINDINGS = [
        Binding(
            "a",
            "accept",
            "Accept",
            tooltip="write the suggestion into the file (only if the file is unchanged)",
        ),
        Binding("r", "reject", "Reject", tooltip="drop the suggestion"),
        Binding(
            "g", "retry", "Retry", tooltip="suggest again where the last suggestion was rejected (sampled)"
        ),
        Binding("c", "copy", "Copy", tooltip="copy the suggestion's text to the clipboard"),
        Binding("f3", "toggle_panel", "Panel", tooltip="show or hide the denoising view"),
        Binding("f5", "replay", "Replay", tooltip="replay the suggestion's generation in slow motion"),
        Binding("q,ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        session: WatchSession,
        settings: Settings | None = None,
        *,
        engine_factory: EngineFactory,
        problems: Sequence[str] = (),
    ):
        super().__init__()
        self.session = session
        self.settings = settings or Settings()
        self._factory = engine_factory
        self._problems = list(problems)
        self.model_state = f"{self.settings.model} (loading…)"  # the model's name once loaded
        self._rows: list[tuple[int, str, str, int]] = []  # what the list shows, to redraw only on change
        self._redraw_pending = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="watch-main"):
            yield SuggestionList(self.session.folders, id="suggestions")
            with VerticalScroll(id="detail-scroll"):
                yield SuggestionDetail(self.session.folders, id="detail")
        yield DenoiseView(self.settings.replay_fps, id="denoise")
        yield Static(id="activity")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        for problem in self._problems:
            self.notify(problem, title="Settings", severity="warning", timeout=10)
        self.session.on_change = lambda s: self.post_message(WatchChanged(s))
        self._load(self.settings.model)
        self.query_one(SuggestionList).focus()
        self._redraw()

    @property
    def suggestion_list(self) -> SuggestionList:
        return self.query_one(SuggestionList)

    @property
    def denoise(self) -> DenoiseView:
        return self.query_one(DenoiseView)

    # --- the model ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, model: str) -> None:
        def progress(done: int, total: int, _name: str) -> None:
            self.post_message(ModelProgress(model, done, total))

        try:
            engine = self._factory(model, progress)
        except Exception as e:  # shown to the user; the watch goes on without suggestions
            self.post_message(ModelFailed(model, str(e) or type(e).__name__))
        else:
            self.post_message(ModelLoaded(model, engine))

    def on_model_progress(self, message: ModelProgress) -> None:
        self.query_one(StatusBar).progress(message.done, message.total)

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.model_state = message.model
        self.query_one(StatusBar).progress(1, 1)
        self.session.set_engine(message.engine)
        self._status()

    def on_model_failed(self, message: ModelFailed) -> None:
        self.model_state = f"{message.model} (failed to load: no suggestions)"
        self.query_one(StatusBar).progress(1, 1)
        self.notify(f"Could not load model {message.model}: {message.error}", severity="error", timeout=10)
        self._status()

    # --- what the session says ------------------------------------------------------------------

    def on_watch_changed(self, _message: WatchChanged) -> None:
        if not self._redraw_pending:  # once per batch of queued changes: every denoising step posts one
            self._redraw_pending = True
            self.call_later(self._changed)

    def _changed(self) -> None:
        self._redraw_pending = False
        if not self.query(SuggestionList):  # closing: a change posted before the quit, widgets gone
            return
        self._redraw()
        self.denoise.refresh()

    def on_option_list_option_highlighted(self, _event: OptionList.OptionHighlighted) -> None:
        self._follow()
        self._detail()

    def _follow(self) -> None:
        """Show the running generation live, or else the selected suggestion's (kept while it is replayed)."""
        suggestions = self.session.suggestions
        running = next((s for s in suggestions if s.status == "denoising" and s.trace is not None), None)
        shown = running or self.suggestion_list.selected
        if shown is not None and shown.trace is not None and self.denoise.trace is not shown.trace:
            self.denoise.follow(shown.trace)

    def _redraw(self) -> None:
        suggestions = self.session.suggestions
        rows = [(s.id, s.status, str(s.path), len(s.trace.text) if s.trace else 0) for s in suggestions]
        if rows != self._rows:
            self._rows = rows
            self.suggestion_list.show(suggestions)
        self._follow()
        self._detail()
        log = list(self.session.log)[-LOG_LINES:]
        lines = [
            Text(f"{display_path(path, self.session.folders)}: {what}", no_wrap=True, overflow="ellipsis")
            for path, what in log
        ]
        self.query_one("#activity", Static).update(Text("\n").join(lines))
        self._status()

    def _detail(self) -> None:
        self.query_one(SuggestionDetail).show(self.suggestion_list.selected, self.syntax_styles())

    def _status(self) -> None:
        session = self.session
        parts = [
            f"watching {count(len(session.folders), 'folder')}, {count(len(session.files), 'file')}",
            f"model {self.model_state}",
            f"mode {self.settings.mode}",
            count(len(self._rows), "suggestion"),
            f"{len(session.skipped)} skipped",
        ]
        self.query_one(StatusBar).show("  │  ".join(parts))

    # --- keys -----------------------------------------------------------------------------------

    def _selected(self) -> Suggestion | None:
        s = self.suggestion_list.selected
        if s is None:
            self.notify("No suggestion selected", severity="warning")
        return s

    def action_accept(self) -> None:
        s = self._selected()
        if s is not None:
            message = self.session.accept(s)
            self.notify(message, severity="information" if s.status == "accepted" else "warning")

    def action_reject(self) -> None:
        s = self._selected()
        if s is not None:
            self.session.reject(s)
            self.notify(f"{display_path(s.path, self.session.folders)}:{s.line}: rejected")

    def action_retry(self) -> None:
        self.notify(self.session.retry())

    def action_copy(self) -> None:
        s = self._selected()
        if s is not None and s.status != "ready":
            self.notify(f"The suggestion is {s.status}: nothing to copy yet", severity="warning")
        elif s is not None:
            self.copy_to_clipboard(s.text)
            self.notify(f"Copied {len(s.text)} characters")

    def action_toggle_panel(self) -> None:
        self.denoise.display = not self.denoise.display

    def action_replay(self) -> None:
        self.denoise.display = True
        self.denoise.action_play()
