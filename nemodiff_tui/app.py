"""The nemodiff app: an editor whose completions appear as ghost text while the model denoises them.

One completion request is in flight at a time. It starts after a pause in typing (or on ctrl+g),
runs in a thread worker that forwards the engine's events as messages, and is cancelled by the
next edit or cursor move (the engine stops within one forward pass). The committed text streams
into the ghost text through the suggestion pipeline (`engine.prompts.suggestion`), run in the
worker thread: a rule that fires cancels the rest before the engine's next forward pass.
While a suggestion is shown, the next one is prefetched as if it were accepted (llama.vim does
this), so accepting with tab shows the following suggestion at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.theme import Theme
from textual.timer import Timer
from textual.widgets import Footer, TabbedContent, TextArea

from engine.events import Done, Note, Step
from engine.prompts.suggestion import Context, Pipeline, Rules, printable
from engine.request import MODES, GenerationConfig
from nemodiff_tui.commands import NemodiffCommands
from nemodiff_tui.completion import (
    SuggestionCache,
    advance,
    context_after,
    context_at,
    next_line,
    next_word,
    typed_since,
)
from nemodiff_tui.config import Settings, config_path, save_setting
from nemodiff_tui.engine_factory import CompletionEngine, EngineFactory, Generation, TokenTexts
from nemodiff_tui.engine_factory import engine_factory as default_factory
from nemodiff_tui.files import DiskState, FileRefused, atomic_write, changed_on_disk, read_only, read_text
from nemodiff_tui.highlight import lexer_for
from nemodiff_tui.latency_log import LatencyLog
from nemodiff_tui.messages import GenerationEvent, GenerationFailed, ModelFailed, ModelLoaded, ModelProgress
from nemodiff_tui.themes import ThemedApp
from nemodiff_tui.trace import Trace
from nemodiff_tui.widgets.denoise_view import DenoiseView
from nemodiff_tui.widgets.dialogs import ConfirmScreen, PromptScreen
from nemodiff_tui.widgets.editor import CodeEditor, GhostPiece
from nemodiff_tui.widgets.help import HelpScreen
from nemodiff_tui.widgets.status import StatusBar
from nemodiff_tui.widgets.tabs import EditorTabs


LARGE_FILE = 200_000  # characters; opening a larger file shows a progress line


@dataclass
class Inflight:
    """The one running generation: where it was asked for and what it produced so far."""

    serial: int
    generation: Generation
    editor: CodeEditor
    ctx: Context
    trace: Trace
    pipeline: Pipeline  # where the suggestion ends: fed in the worker thread, read here once Done arrives
    alternative: int  # 0: the greedy suggestion; more are sampled after it when configured
    kept: str = ""  # the committed text the stop rules keep, as of the last event handled
    stopped: bool = False  # a stop rule fired: the rest is cancelled and not shown
    # A prefetch: the suggestion it assumes accepted (where it is shown, its text); None otherwise.
    assumes: tuple[Context, str] | None = None


@dataclass
class Shown:
    """The suggestion on screen: final alternatives, or the committed part of a streaming one."""

    editor: CodeEditor
    ctx: Context
    alternatives: list[str]
    index: int = 0
    final: bool = True
    traces: list[Trace | None] = dataclasses.field(default_factory=list)  # each alternative's generation

    @property
    def text(self) -> str:
        return self.alternatives[self.index]

    @property
    def trace(self) -> Trace | None:
        """The generation of the alternative on screen (None: not known, e.g. a cache hit)."""
        return self.traces[self.index] if self.index < len(self.traces) else None

    def pairs(self) -> list[tuple[str, Trace | None]]:
        """(text, generation) of every alternative."""
        return list(
            zip(self.alternatives, self.traces + [None] * (len(self.alternatives) - len(self.traces)))
        )

    def rotated(self) -> list[tuple[str, Trace | None]]:
        """`pairs`, the one on screen first."""
        pairs = self.pairs()
        return pairs[self.index :] + pairs[: self.index]

    @property
    def usable_keys(self) -> tuple[bool, bool]:
        """Can it be accepted, can it be cycled: what `check_action` decides on."""
        return bool(self.text), len(self.alternatives) > 1


class NemodiffApp(ThemedApp):
    CSS_PATH = "nemodiff.tcss"
    TITLE = "nemodiff"
    COMMANDS = App.COMMANDS | {NemodiffCommands}
    BINDINGS = [
        Binding("tab", "accept", "Accept", id="accept", priority=True, tooltip="accept the whole suggestion"),
        Binding(
            "ctrl+right",
            "accept_word",
            "Word",
            id="accept-word",
            priority=True,
            show=False,
            tooltip="accept the suggestion's next word",
        ),
        Binding(
            "ctrl+down",
            "accept_line",
            "Line",
            id="accept-line",
            priority=True,
            show=False,
            tooltip="accept the suggestion's next line",
        ),
        Binding(
            "escape",
            "dismiss",
            "Dismiss",
            id="dismiss",
            priority=True,
            show=False,
            tooltip="dismiss the suggestion and cancel its generation",
        ),
        Binding(
            "f8,alt+right_square_bracket",
            "cycle(1)",
            "Next",
            id="next-suggestion",
            priority=True,
            tooltip="next alternative suggestion",
        ),
        Binding(
            "shift+f8,alt+left_square_bracket",
            "cycle(-1)",
            "Previous",
            id="previous-suggestion",
            priority=True,
            show=False,
            tooltip="previous alternative suggestion",
        ),
        Binding("ctrl+g", "complete", "Complete", id="complete", tooltip="ask for a suggestion now"),
        Binding("ctrl+o", "open", "Open", id="open", tooltip="open a file in a new tab"),
        Binding(
            "ctrl+s", "save", "Save", id="save", tooltip="save (atomically; asks if the file changed on disk)"
        ),
        Binding("ctrl+n", "new", "New", id="new", show=False, tooltip="new scratch buffer"),
        Binding(
            "ctrl+w,alt+w",
            "close",
            "Close",
            id="close",
            priority=True,
            show=False,
            tooltip="close the tab (asks if unsaved)",
        ),
        Binding(
            "ctrl+pagedown,alt+right",
            "next_tab(1)",
            "Next tab",
            id="next-tab",
            show=False,
            tooltip="next tab",
        ),
        Binding(
            "ctrl+pageup,alt+left",
            "next_tab(-1)",
            "Previous tab",
            id="previous-tab",
            show=False,
            tooltip="previous tab",
        ),
        Binding(
            "ctrl+l", "go_to_line", "Go to line", id="go-to-line", show=False, tooltip="go to a line number"
        ),
        Binding(
            "f2",
            "next_mode",
            "Mode",
            id="mode",
            tooltip="next decoding mode (auto, ar, diffusion, self-spec)",
        ),
        Binding("f3", "toggle_panel", "Panel", id="panel", tooltip="show or hide the denoising view"),
        Binding("f4", "switch_model", "Model", id="model", show=False, tooltip="load another model"),
        Binding("f5", "replay", "Replay", id="replay", tooltip="replay the last generation in slow motion"),
        Binding(
            "shift+f9,alt+comma",
            "replay_step(-1)",
            "Step back",
            id="replay-back",
            priority=True,
            show=False,
            tooltip="replay: one forward pass back",
        ),
        Binding(
            "f9,alt+full_stop",
            "replay_step(1)",
            "Step",
            id="replay-forward",
            priority=True,
            show=False,
            tooltip="replay: one forward pass on",
        ),
        Binding("f1", "help", "Help", id="help", tooltip="this help"),
        Binding(
            "ctrl+q", "quit", "Quit", id="quit", priority=True, tooltip="quit (asks about unsaved changes)"
        ),
    ]
    COMPLETION_ACTIONS = ("accept", "accept_word", "accept_line", "dismiss", "cycle")
    EDITOR_ACTIONS = ("close", "replay_step", "go_to_line", "complete", "save", "open", "new")

    def __init__(
        self,
        files: Sequence[str | Path] = (),
        settings: Settings | None = None,
        *,
        engine_factory: EngineFactory | None = None,
        problems: Sequence[str] = (),
        settings_path: Path | None = None,
    ):
        """`engine_factory(model, progress)` builds the engine in a worker thread (default:
        `engine.load` on the settings' device); tests inject a recorded engine here."""
        super().__init__()
        self.settings = settings or Settings()
        self.settings_path = settings_path or config_path()
        self._files = [Path(f).expanduser() for f in files]
        self._factory = engine_factory or default_factory(self.settings.device, self.settings.dtype)
        self._problems = list(problems)
        self.engine: CompletionEngine | None = None
        self.model_name: str | None = None
        self.loading: str | None = None  # the model being loaded
        self.cache = SuggestionCache()
        self._traces: OrderedDict[tuple[str, str], list[Trace | None]] = OrderedDict()  # by cache key
        self.latency = LatencyLog()
        self._texts: TokenTexts | None = None
        self._serial = 0
        self._inflight: Inflight | None = None
        self._shown: Shown | None = None
        self._debounce: Timer | None = None
        self._redraw_pending = False
        self._notes: set[str] = set()

    def compose(self) -> ComposeResult:
        yield EditorTabs(id="tabs")
        yield DenoiseView(self.settings.replay_fps, id="denoise")
        yield StatusBar(id="status")
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        known = {b.id for b in self.BINDINGS if isinstance(b, Binding) and b.id}
        unknown = sorted(set(self.settings.keys) - known)
        if unknown:
            self._problems.append(f"[keys]: unknown binding ids {', '.join(unknown)} (see f1 for the ids)")
        self.set_keymap({k: v for k, v in self.settings.keys.items() if k in known})
        self._problems += self._key_conflicts()
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        else:
            self._problems.append(
                f"unknown theme {self.settings.theme!r}; themes: {', '.join(self.available_themes)}"
            )
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        for path in self._files:
            await self.open_path(path)
        if not self.tabs.editors:
            await self.action_new()
        for problem in self._problems:
            self.notify(problem, title="Settings", severity="warning", timeout=10)
        self.load_model(self.settings.model)

    def on_unmount(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._cancel()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.latency.key()
        await super().on_event(event)

    @property
    def tabs(self) -> EditorTabs:
        return self.query_one(EditorTabs)

    @property
    def denoise(self) -> DenoiseView:
        return self.query_one(DenoiseView)

    @property
    def shown(self) -> Shown | None:
        return self._shown

    # --- models and modes -----------------------------------------------------------------------

    def load_model(self, model: str) -> None:
        """Load `model` in a worker thread; the current engine serves until it is ready."""
        self.loading = model
        self._status()
        self._load(model)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, model: str) -> None:
        shown = -1

        def progress(done: int, total: int, _name: str) -> None:
            nonlocal shown
            percent = done * 100 // max(total, 1)
            if percent != shown:
                shown = percent
                self.post_message(ModelProgress(model, done, total))

        try:
            engine = self._factory(model, progress)
        except Exception as e:  # any failure to load is reported; the app keeps its current model
            self.post_message(ModelFailed(model, str(e) or type(e).__name__))
        else:
            self.post_message(ModelLoaded(model, engine))

    def on_model_progress(self, message: ModelProgress) -> None:
        if message.model == self.loading:
            self.query_one(StatusBar).progress(message.done, message.total)

    def on_model_loaded(self, message: ModelLoaded) -> None:
        if message.model != self.loading:
            return
        self._reset()
        self.engine, self.model_name, self.loading = message.engine, message.model, None
        self._texts = TokenTexts(message.engine.tokenizer)
        self.query_one(StatusBar).progress(1, 1)
        self.notify(f"Model {message.model} ready")
        self._status()

    def on_model_failed(self, message: ModelFailed) -> None:
        if message.model != self.loading:
            return
        self.loading = None
        self.query_one(StatusBar).progress(1, 1)
        keeps = f"; still using {self.model_name}" if self.model_name else ""
        self.notify(
            f"Could not load model {message.model}: {message.error}{keeps}", severity="error", timeout=10
        )
        self._status()

    def set_mode(self, mode: str) -> None:
        """The status line shows the new mode (a notification per f2 press stacked over the panel)."""
        self._reset()
        self.settings = self.settings.replace(mode=mode)
        self._status()

    def use_theme(self, name: str) -> None:
        self.theme = name

    def action_next_mode(self) -> None:
        self.set_mode(MODES[(MODES.index(self.settings.mode) + 1) % len(MODES)])

    def action_switch_model(self) -> None:
        def chosen(model: str | None) -> None:
            if model:
                self.load_model(model)

        self.push_screen(
            PromptScreen(
                "Load model: a checkpoint directory, a Hugging Face id, or demo", self.model_name or "demo"
            ),
            chosen,
        )

    def _reset(self) -> None:
        """Suggestions from another model or mode are no longer valid."""
        self._cancel()
        self._hide()
        self.cache.clear()
        self._traces.clear()

    # --- completion: when to ask ----------------------------------------------------------------

    @on(TextArea.Changed)
    def _edited(self, event: TextArea.Changed) -> None:
        editor = event.text_area
        assert isinstance(editor, CodeEditor)
        self.tabs.relabel(editor)
        ctx = self._sync(editor)
        if self._shown is None or not self._shown.final:
            if self.cache.get(ctx.key):  # a prefetched suggestion, after tab
                self._request(editor)
            else:
                self._schedule(editor)

    @on(TextArea.SelectionChanged)
    def _moved(self, event: TextArea.SelectionChanged) -> None:
        assert isinstance(event.text_area, CodeEditor)
        self._sync(event.text_area)
        self._status()

    @on(TabbedContent.TabActivated)
    def _switched(self) -> None:
        self._cancel()
        self._hide()
        self._status()

    def _cursor_context(self, editor: CodeEditor) -> Context:
        row, column = editor.cursor_location
        return context_at(editor.document.lines, row, column, self.settings.context_chars)

    def _sync(self, editor: CodeEditor) -> Context:
        """Keep the suggestion true to the cursor after an edit or a move; returns the cursor's context.

        A request for another position is cancelled, except a prefetch while the cursor is still
        on its way through the suggestion it assumes (typed or partly accepted); one the cursor
        reaches (the suggestion was accepted) becomes the cursor's request. A shown suggestion
        survives when the user typed its first characters (the rest stays), and is hidden otherwise.
        """
        ctx = self._cursor_context(editor)
        inflight = self._inflight
        if inflight is not None and not self._serves(inflight, editor, ctx):
            self._cancel()
        elif inflight is not None and inflight.assumes is not None and ctx == inflight.ctx:
            inflight.assumes = None
            self.denoise.follow(inflight.trace)
            self.latency.request(self.model_name or "", inflight.trace.mode)
        shown = self._shown
        if shown is None or (shown.editor is editor and shown.ctx == ctx):
            return ctx
        typed = typed_since(shown.ctx, ctx) if shown.editor is editor else None
        rest = [
            (left[0], trace) for text, trace in shown.rotated() if typed and (left := advance([text], typed))
        ]
        if rest and editor.selection.is_empty:
            self._show(Shown(editor, ctx, [text for text, _ in rest], 0, shown.final, [t for _, t in rest]))
        else:
            self._hide()
        return ctx

    @staticmethod
    def _serves(inflight: Inflight, editor: CodeEditor, ctx: Context) -> bool:
        """Is the in-flight request still of use with the cursor at `ctx`?"""
        if inflight.editor is not editor:
            return False
        if ctx == inflight.ctx:
            return True
        if inflight.assumes is None:
            return False
        origin, text = inflight.assumes
        typed = typed_since(origin, ctx)
        return typed is not None and text.startswith(typed)

    def _schedule(self, editor: CodeEditor) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(self.settings.debounce_ms / 1000, lambda: self._request(editor))

    def action_complete(self) -> None:
        editor = self.tabs.current
        if editor is None:
            return
        if self.engine is None:
            self.notify(
                f"Model {self.loading} is still loading"
                if self.loading
                else "No model loaded (f4 loads one)",
                severity="warning",
            )
            return
        self._request(editor, manual=True)

    def _request(self, editor: CodeEditor, manual: bool = False) -> None:
        """Show the cached suggestion for the cursor, or ask the engine for one."""
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        if (
            self.engine is None
            or not editor.is_attached
            or not editor.has_focus
            or not editor.selection.is_empty
        ):
            return  # no model yet, a closed buffer, focus elsewhere, or a selection to type over
        ctx = self._cursor_context(editor)
        cached = self.cache.get(ctx.key)
        if cached:
            traces = self._traces.get(ctx.key, [])
            self._show(Shown(editor, ctx, cached, traces=traces if len(traces) == len(cached) else []))
        elif self._inflight is not None and self._inflight.editor is editor and self._inflight.ctx == ctx:
            return  # already on its way (a prefetch the cursor reached)
        elif cached is None or manual:
            self._start(editor, ctx, 0)

    def _prefetch(self, editor: CodeEditor, origin: Context, text: str) -> None:
        """Ask for the suggestion that will follow `text`, shown at the cursor, once it is accepted."""
        row, column = editor.cursor_location
        ahead = context_after(editor.document.lines, row, column, text, self.settings.context_chars)
        if self.cache.get(ahead.key) is None:
            self._start(editor, ahead, 0, assumes=(origin, text))

    def _start(
        self, editor: CodeEditor, ctx: Context, alternative: int, assumes: tuple[Context, str] | None = None
    ) -> None:
        assert self.engine is not None and self._texts is not None
        self._cancel()
        self._serial += 1
        config = GenerationConfig(
            mode=self.settings.mode,
            auto_diffusion=self.settings.auto_diffusion,
            max_new_tokens=self.settings.max_new_tokens,
            temperature=self.settings.alternative_temperature if alternative else 0.0,
            seed=alternative or None,
        )
        mode = self.engine.resolve_mode(config)[0]
        pipeline = Pipeline(ctx, self.rules)
        generation = self.engine.generate(pipeline.request(config))
        label = "prefetch" if assumes else f"alternative {alternative + 1}" if alternative else "suggestion"
        trace = Trace(mode, frozenset(self.engine.tokenizer.special_ids), label)
        self._inflight = Inflight(
            self._serial, generation, editor, ctx, trace, pipeline, alternative, assumes=assumes
        )
        if assumes is None and alternative == 0:  # the panel shows the generation of what is on screen
            self.denoise.follow(trace)
            self.latency.request(self.model_name or "", mode)
        self._generate(self._serial, generation, pipeline, self._texts)
        self._status()

    @property
    def rules(self) -> Rules:
        return Rules(max_lines=self.settings.max_lines)

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def _generate(self, serial: int, generation: Generation, pipeline: Pipeline, texts: TokenTexts) -> None:
        try:
            for event in pipeline.follow(generation):
                slots = texts(event.tokens) if isinstance(event, Step) else ()
                self.post_message(GenerationEvent(serial, event, slots, pipeline.text, pipeline.final))
        except Exception as e:  # a failed generation is reported; the editor stays usable
            self.post_message(GenerationFailed(serial, f"{type(e).__name__}: {e}"))

    def _cancel(self) -> None:
        if self._inflight is not None:
            self._inflight.generation.cancel()
            self._inflight = None
            self._status()

    # --- completion: what the engine says -------------------------------------------------------

    def on_generation_event(self, message: GenerationEvent) -> None:
        inflight = self._inflight
        if inflight is None or message.serial != inflight.serial:
            return
        event = message.event
        inflight.trace.add(event, message.texts)
        inflight.trace.stopped = message.final  # a stop rule's cancel, which the panel must not call a cancel
        if isinstance(event, Note) and event.message not in self._notes:
            self._notes.add(event.message)
            self.notify(event.message, title="Engine")
        if isinstance(event, Done):
            self._finish(inflight)
            self.denoise.refresh()
            return
        inflight.kept, inflight.stopped = message.kept, message.final
        if not self._redraw_pending:  # once per batch of queued events: a fast engine outpaces drawing
            self._redraw_pending = True
            self.call_later(self._redraw)

    def _redraw(self) -> None:
        self._redraw_pending = False
        if self._inflight is not None and self._inflight.alternative == 0 and self._inflight.assumes is None:
            self._stream(self._inflight)
        self.denoise.refresh()

    def on_generation_failed(self, message: GenerationFailed) -> None:
        inflight = self._inflight
        if inflight is not None and message.serial == inflight.serial:
            self._inflight = None
            if inflight.alternative == 0 and inflight.assumes is None:  # the shown suggestion's own request
                self._hide()
                self.notify(f"Generation failed: {message.error}", severity="error", timeout=10)
            else:  # a prefetch or an extra alternative: what is shown stays valid
                self.notify(f"Background generation failed: {message.error}", severity="warning", timeout=5)

    def _stream(self, inflight: Inflight) -> None:
        """Show a generation as it denoises: committed text, then the block's guesses and masks."""
        tail = [] if inflight.stopped else inflight.trace.tail()
        pieces: list[GhostPiece] = [(inflight.kept, "text")]
        pieces += [(printable(t), "masked" if m else "guess") for t, m in tail]
        if any(text.strip() for text, kind in pieces if kind != "masked"):
            self.latency.visible()
        self._show(Shown(inflight.editor, inflight.ctx, [inflight.kept], final=False), pieces)

    def _finish(self, inflight: Inflight) -> None:
        self._inflight = None
        done = inflight.trace.done
        assert done is not None
        final = inflight.pipeline.suggestion
        if inflight.assumes is not None:  # a prefetch the cursor has not reached: kept for when it does
            self._remember(inflight.ctx, [final] if final else [], [inflight.trace])
            return
        shown = self._shown
        earlier = shown.pairs() if inflight.alternative and shown is not None and shown.final else []
        if final and final not in [text for text, _ in earlier]:
            earlier.append((final, inflight.trace))
        alternatives, traces = [text for text, _ in earlier], [trace for _, trace in earlier]
        if inflight.alternative == 0:
            self.latency.done(done)
            if self.latency.error:
                self.notify(self.latency.error, severity="warning", timeout=10)
                self.latency.error = None
        self._remember(inflight.ctx, alternatives, traces)
        if alternatives:
            index = shown.index if inflight.alternative and shown is not None and shown.final else 0
            self._show(Shown(inflight.editor, inflight.ctx, alternatives, index, traces=traces))
        else:
            self._hide()
        if inflight.alternative + 1 < self.settings.alternatives:
            self._start(inflight.editor, inflight.ctx, inflight.alternative + 1)
        elif alternatives and self.settings.prefetch:
            self._prefetch(inflight.editor, inflight.ctx, alternatives[0])
        self._status()

    def _remember(self, ctx: Context, alternatives: list[str], traces: list[Trace | None]) -> None:
        """Cache final suggestions, and their generations for the panel while they are cached."""
        self.cache.put(ctx.key, alternatives)
        self._traces[ctx.key] = traces
        self._traces.move_to_end(ctx.key)
        while len(self._traces) > self.cache.capacity:
            self._traces.popitem(last=False)

    def _show(self, shown: Shown, pieces: list[GhostPiece] | None = None) -> None:
        if self._shown is not None and self._shown.editor is not shown.editor:
            self._shown.editor.clear_ghost()
        if shown.final and shown.trace is not None:
            self.denoise.follow(shown.trace)
        before, self._shown = self._shown, shown
        pieces = pieces if pieces is not None else [(shown.text, "text")]
        shown.editor.show_ghost(pieces, self.rules.lines(shown.ctx))
        if before is None or before.usable_keys != shown.usable_keys:
            self.refresh_bindings()  # the footer recomposes: not on every streamed token
        self._status()

    def _hide(self) -> None:
        if self._shown is not None:
            self._shown.editor.clear_ghost()
            self._shown = None
            self.refresh_bindings()
            self._status()

    # --- completion: keys -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Completion keys act only while the editor shows a suggestion; otherwise the key does
        what it does without one (tab indents, escape leaves the editor, ctrl+right moves)."""
        if action in self.EDITOR_ACTIONS and isinstance(self.screen, ModalScreen):
            return False  # a dialog has the keys (ctrl+w deletes a word in its input)
        if action not in self.COMPLETION_ACTIONS:
            return True
        shown = self._shown
        if shown is None or self.focused is not shown.editor:
            return (
                action == "dismiss" and self._inflight is not None and self.focused is self._inflight.editor
            )
        if action == "cycle":
            return len(shown.alternatives) > 1
        return action == "dismiss" or bool(shown.text)

    def action_accept(self) -> None:
        self._accept(lambda text: text)

    def action_accept_word(self) -> None:
        self._accept(next_word)

    def action_accept_line(self) -> None:
        self._accept(next_line)

    def _accept(self, part: Callable[[str], str]) -> None:
        """Insert part of the shown suggestion; the typed-ahead rule keeps the rest on screen."""
        shown = self._shown
        assert shown is not None
        shown.editor.insert(part(shown.text), maintain_selection_offset=False)

    def action_dismiss(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._cancel()
        self._hide()

    def action_cycle(self, step: int) -> None:
        shown = self._shown
        if shown is None or len(shown.alternatives) < 2:  # from the palette: the keys are off then
            self.notify("No alternative suggestions shown (set alternatives = 2 or more)", severity="warning")
            return
        self._show(dataclasses.replace(shown, index=(shown.index + step) % len(shown.alternatives)))

    # --- the denoising view ---------------------------------------------------------------------

    def action_focus_editor(self) -> None:
        if self.tabs.current is not None:
            self.tabs.current.focus()

    def action_toggle_panel(self) -> None:
        self.denoise.display = not self.denoise.display

    def action_replay(self) -> None:
        self.denoise.display = True
        self.denoise.action_play()

    def action_replay_step(self, delta: int) -> None:
        self.denoise.display = True
        self.denoise.action_step(delta)

    # --- files ----------------------------------------------------------------------------------

    def _editor(self, text: str = "", path: Path | None = None, disk: DiskState | None = None) -> CodeEditor:
        return CodeEditor(
            text, path, disk, syntax=self.syntax_styles(), cursor_blink=self.settings.cursor_blink
        )

    async def open_path(self, path: Path) -> None:
        """Open `path` in a tab (a path that does not exist yet becomes a new file on save)."""
        try:
            existing = self.tabs.find(path)
            exists = path.exists()
            text, disk = read_text(path) if exists and existing is None else ("", None)
        except (OSError, RuntimeError) as e:  # a symlink loop, a name too long
            self.notify(f"{path}: {e}", title="Not opened", severity="error", timeout=10)
            return
        except FileRefused as e:
            self.notify(str(e), title="Not opened", severity="error", timeout=10)
            return
        if existing is not None:
            self.tabs.show(existing)
        elif not exists:
            await self.tabs.add_editor(self._editor("", path))
            self.notify(f"{path}: new file, written on save")
        elif not CodeEditor.keeps(text):
            self.notify(
                f"{path} mixes line endings or has form feeds or Unicode line separators, which the "
                "editor would rewrite on save: not opened",
                title="Not opened",
                severity="error",
                timeout=10,
            )
        else:
            if len(text) > LARGE_FILE:  # a few seconds on a slow machine: say what is going on
                self.query_one(StatusBar).show(f"Opening {path.name} ({len(text.encode()) / 1e6:.1f} MB)…")
                await asyncio.sleep(0.05)  # lets the screen draw it
            await self.tabs.add_editor(self._editor(text, path, disk))
        if existing is None and self.tabs.find(path) is not None:  # opened now
            self._language_hint(path)

    def _language_hint(self, path: Path) -> None:
        """The demo model writes Python only: say so once per other language, not silently offer
        poor suggestions."""
        language = lexer_for(path.name).name
        if self.settings.model == "demo" and language != "Python" and language not in self._notes:
            self._notes.add(language)
            self.notify(
                f"The demo model writes Python only: expect poor suggestions in {language} files. "
                "Load a code model with f4.",
                title="Demo model",
            )

    def _typed_path(self, typed: str) -> Path | None:
        """A path typed in a dialog, `~` expanded; None (and a notification) when it cannot be one."""
        try:
            return Path(typed).expanduser()
        except RuntimeError as e:  # ~nosuchuser
            self.notify(f"{typed}: {e}", title="Not a usable path", severity="error", timeout=10)
            return None

    async def action_new(self) -> None:
        await self.tabs.add_editor(self._editor())

    def action_open(self) -> None:
        async def chosen(typed: str | None) -> None:
            if typed and (path := self._typed_path(typed)) is not None:
                await self.open_path(path)

        self.push_screen(PromptScreen("Open file", placeholder="path/to/file.py"), chosen)

    def action_save(self) -> None:
        editor = self.tabs.current
        if editor is not None and editor.path is not None:
            self._save(editor, editor.path)
        else:
            self.action_save_as()

    def action_save_as(self) -> None:
        editor = self.tabs.current
        if editor is None:
            return

        def chosen(typed: str | None) -> None:
            if typed and (path := self._typed_path(typed)) is not None:
                self._save(editor, path)

        question = "Save as" if editor.path else "Save scratch buffer as"
        self.push_screen(
            PromptScreen(question, str(editor.path or ""), placeholder="path/to/file.py"), chosen
        )

    def action_reload(self) -> None:
        """Read the file again from disk (asks first when that drops unsaved changes)."""
        editor = self.tabs.current
        if editor is None or editor.path is None:
            self.notify("A scratch buffer has no file to reload", severity="warning")
            return
        path = editor.path

        def reload(ok: bool | None = True) -> None:
            if not ok:
                return
            try:
                text, disk = read_text(path)
            except FileRefused as e:
                self.notify(str(e), title="Not reloaded", severity="error", timeout=10)
                return
            self._cancel()
            self._hide()
            editor.load_text(text)
            editor.mark_saved(path, disk)
            self.tabs.relabel(editor)
            self.notify(f"Reloaded {path}")

        if editor.modified:
            self.push_screen(
                ConfirmScreen(
                    f"Drop the unsaved changes in {editor.title} and reload it from disk?", "Reload"
                ),
                reload,
            )
        else:
            reload()

    def action_go_to_line(self) -> None:
        editor = self.tabs.current
        if editor is None:
            return

        def chosen(typed: str | None) -> None:
            if typed is None:
                return
            if not typed.isdigit():
                self.notify(f"{typed!r} is not a line number", severity="warning")
                return
            editor.go_to_line(int(typed))
            editor.focus()

        lines = editor.document.line_count
        self.push_screen(
            PromptScreen(f"Go to line (1-{lines})", placeholder=str(editor.cursor_location[0] + 1)), chosen
        )

    def _save(self, editor: CodeEditor, path: Path, force: bool = False) -> None:
        """Write atomically; ask first when the file changed on disk since it was opened (or, for a
        new path, when it exists)."""
        try:
            if read_only(path):
                self.notify(
                    f"{path} is read-only: not saved. Save as… (ctrl+p) writes it elsewhere.",
                    title="Not saved",
                    severity="error",
                    timeout=10,
                )
                return
            changed = changed_on_disk(path, editor.disk if path == editor.path else None)
            if changed and not force:
                what = "changed on disk since it was opened" if path == editor.path else "already exists"
                self.push_screen(
                    ConfirmScreen(f"{path} {what}. Overwrite it?", "Overwrite"),
                    lambda ok: self._save(editor, path, force=True) if ok else None,
                )
                return
            disk = atomic_write(path, editor.text)
        except OSError as e:
            self.notify(
                f"Could not save {path}: {e.strerror or e}. The file on disk is unchanged.",
                title="Not saved",
                severity="error",
                timeout=10,
            )
            return
        editor.mark_saved(path, disk)
        self.tabs.relabel(editor)
        self.notify(f"Saved {path}")

    async def action_close(self) -> None:
        editor = self.tabs.current
        if editor is None:
            return

        async def close(ok: bool | None = True) -> None:
            if ok:
                self._cancel()
                self._hide()
                await self.tabs.close(editor)
                if not self.tabs.editors:
                    await self.action_new()

        if editor.modified:
            self.push_screen(ConfirmScreen(f"{editor.title} has unsaved changes. Close it?", "Close"), close)
        else:
            await close()

    def action_next_tab(self, step: int) -> None:
        self.tabs.cycle(step)

    async def action_quit(self) -> None:
        unsaved = [e.title for e in self.tabs.editors if e.modified]
        if not unsaved:
            self.exit()
            return
        self.push_screen(
            ConfirmScreen(f"Unsaved changes in {', '.join(unsaved)}. Quit anyway?", "Quit"),
            lambda ok: self.exit() if ok else None,
        )

    # --- look -----------------------------------------------------------------------------------

    def _theme_changed(self, theme: Theme) -> None:
        """Recolour the editors, and keep the choice for the next start (palette or f-key alike)."""
        for editor in self.tabs.editors:
            editor.set_syntax(self.syntax_styles())
        if theme.name != self.settings.theme:
            self.settings = self.settings.replace(theme=theme.name)
            try:
                save_setting(self.settings_path, "theme", theme.name)
            except OSError as e:
                self.notify(f"Theme not saved to {self.settings_path}: {e.strerror or e}", severity="warning")

    def _key_conflicts(self) -> list[str]:
        """`[keys]` remaps onto a key something else already takes: Textual would let one of the two
        win without a word, so say which."""
        editor: dict[str, str] = {}
        for cls in reversed(CodeEditor.__mro__):
            for b in getattr(cls, "BINDINGS", []):
                if isinstance(b, Binding):
                    editor.update(
                        {key.strip(): f"the editor's {b.description.lower()!r}" for key in b.key.split(",")}
                    )
        app = {
            b.id: {key.strip() for key in self.settings.keys.get(b.id, b.key).split(",")}
            for b in self.BINDINGS
            if isinstance(b, Binding) and b.id
        }
        problems = []
        for binding_id, keys in self.settings.keys.items():
            for key in (key.strip() for key in keys.split(",")):
                others = [repr(other) for other, taken in app.items() if other != binding_id and key in taken]
                owner = others[0] if others else editor.get(key)
                if owner is None and len(key) == 1 and key.isprintable():
                    owner = "a character the editor types"
                if owner is not None:
                    problems.append(
                        f"[keys]: {binding_id} = {key!r}: {self.key_names(key)} is already {owner}; "
                        "choose another key"
                    )
        return problems

    def key_names(self, keys: str) -> str:
        """Keys as a user types them: `alt+]`, `ctrl+w`, not `alt+right_square_bracket`, `^w`."""
        shown = (self.get_key_display(Binding(key.strip(), "")) for key in keys.split(","))
        return ", ".join("ctrl+" + name[1:] if name.startswith("^") else name for name in shown)

    def action_help(self) -> None:
        keys = [
            (self.key_names(self.settings.keys.get(b.id, b.key)), b.tooltip or b.description, b.id)
            for b in self.BINDINGS
            if isinstance(b, Binding) and b.id
        ]
        keys += [(self.key_names(key), text, "") for key, text in CodeEditor.KEYS]
        keys.append(("ctrl+p", "command palette: mode, model, theme, save as, reload, …", ""))
        panel = [
            (self.key_names(b.key), b.description) for b in DenoiseView.BINDINGS if isinstance(b, Binding)
        ]
        self.push_screen(HelpScreen(keys, panel, str(self.settings_path)))

    def _generation_shown(self) -> str | None:
        """The status of the suggestion on screen (llama.vim's info line): generating or done, its
        tokens, milliseconds and mode; "cached" when it came from the cache."""
        inflight, shown = self._inflight, self._shown
        if (
            inflight is not None
            and inflight.alternative == 0
            and inflight.assumes is None
            and (shown is None or not shown.final)
        ):
            trace = inflight.trace
            return f"generating {trace.n_tokens} tok {trace.milliseconds:.0f} ms {trace.mode}"
        if shown is None:
            return None
        trace = shown.trace
        if trace is None or trace.done is None:
            return "cached"
        return f"done {trace.n_tokens} tok {trace.milliseconds:.0f} ms {trace.mode}"

    def _status(self) -> None:
        if not self.query(EditorTabs) or not self.query(StatusBar):
            return  # a message that arrives while the app shuts down: its widgets are gone
        model = f"{self.loading} (loading…)" if self.loading else (self.model_name or "no model")
        parts = [f"model {model}", f"mode {self.settings.mode}"]
        shown = self._shown
        if shown is not None and len(shown.alternatives) > 1:
            parts.append(f"suggestion {shown.index + 1}/{len(shown.alternatives)}")
        if (generation := self._generation_shown()) is not None:
            parts.append(generation)
        editor = self.tabs.current
        if editor is not None:
            row, column = editor.cursor_location
            parts.append(f"Ln {row + 1}, Col {column + 1}")
        self.query_one(StatusBar).show("  │  ".join(parts))
