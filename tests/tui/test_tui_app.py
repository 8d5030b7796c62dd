"""The app driven by Pilot on a recorded engine: suggestions, their keys, cancellation, files."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

from engine.events import Commit, Step
from nemodiff_tui import files
from nemodiff_tui.app import NemodiffApp, Shown
from nemodiff_tui.config import Settings
from nemodiff_tui.widgets.denoise_view import end_reason
from nemodiff_tui.widgets.dialogs import ConfirmScreen
from nemodiff_tui.widgets.editor import CodeEditor
from nemodiff_tui.widgets.help import HelpScreen
from tests.tui.fake_engine import FakeEngine, load_trace
from tests.tui.pilot_helpers import wait_for

SIZE = (100, 30)
SUGGESTION = "    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)"


def make_app(
    settings: Settings, engine: FakeEngine, files_: list = (), notes: list | None = None
) -> NemodiffApp:
    app = NemodiffApp(files_, settings, engine_factory=engine.factory)
    if notes is not None:
        notify = app.notify

        def record(message, **kwargs):
            notes.append((message, kwargs.get("severity", "information")))
            return notify(message, **kwargs)

        app.notify = record
    return app


def drawn(editor: CodeEditor, rows: int) -> list[str]:
    """The editor's first `rows` screen lines as text, ghost lines included."""
    return ["".join(segment.text for segment in editor.render_line(y)) for y in range(rows)]


async def suggest(pilot, app: NemodiffApp, text: str = "def fibonacci(n):\n") -> None:
    """Put `text` in the editor as typed and wait for the final suggestion."""
    await wait_for(pilot, lambda: app.engine is not None)
    app.tabs.current.insert(text)
    await wait_for(pilot, lambda: app.shown is not None and app.shown.final)


async def test_typing_triggers_a_suggestion_that_fills_in(settings, fake_engine):
    app = make_app(settings.replace(debounce_ms=300), fake_engine)  # a pause longer than between keys
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine is not None)
        await pilot.press(
            *"def fibonacci(n):", "enter", "ctrl+u"
        )  # the recorded answer brings its own indent
        await wait_for(pilot, lambda: app.shown is not None and app.shown.final)
        request = fake_engine.requests[-1]
        assert (request.prefix, request.suffix, request.config.mode) == (
            "def fibonacci(n):\n",
            "",
            "diffusion",
        )
        assert app.shown.text == SUGGESTION
        ghost = app.tabs.current.ghost
        assert len(ghost) == 3 and ghost[1] == [("        return n", "text")]
        assert app.tabs.current.text == "def fibonacci(n):\n"  # ghost text is not in the document
        assert any(not all(f.step.committed) for f in app.denoise.trace.frames)
        record = app.latency.records[-1]
        assert record.key_to_first_token_ms is not None and record.stop_reason == "eos"


async def test_ghost_shows_provisional_slots_while_denoising(settings):
    engine = FakeEngine.from_trace(delay=0.0, hold_at=5)
    app = make_app(settings, engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine is not None)
        app.action_complete()
        await wait_for(pilot, lambda: engine.generations and engine.generations[-1].held.is_set())
        await wait_for(pilot, lambda: len(app.denoise.trace.frames) == 6)  # 5 passes and the masked input
        kinds = {kind for line in app.tabs.current.ghost for _, kind in line}
        assert "text" in kinds and kinds & {"guess", "masked"}
        assert not app.shown.final
        engine.generations[-1].release()
        await wait_for(pilot, lambda: app.shown is not None and app.shown.final)
        assert {kind for line in app.tabs.current.ghost for _, kind in line} == {"text"}


async def test_tab_inserts_the_suggestion(settings, fake_engine):
    app = make_app(settings, fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        await pilot.press("tab")
        editor = app.tabs.current
        assert editor.text == "def fibonacci(n):\n" + SUGGESTION
        assert editor.cursor_location == (3, len("    return fibonacci(n - 1) + fibonacci(n - 2)"))


async def test_tab_indents_when_nothing_is_suggested(settings, fake_engine):
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab")
        assert app.tabs.current.text == "    "


async def test_escape_dismisses(settings, fake_engine):
    app = make_app(settings, fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        await pilot.press("escape")
        assert app.shown is None and app.tabs.current.ghost == []
        assert app.tabs.current.text == "def fibonacci(n):\n"
        assert app.focused is app.tabs.current  # escape went to the suggestion, not to focus


async def test_partial_accept_and_typing_ahead_keep_the_rest_without_a_request(settings, fake_engine):
    app = make_app(settings, fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        requests = len(fake_engine.requests)
        await pilot.press("space", "space")
        assert app.shown.text == SUGGESTION[2:]
        await pilot.press("ctrl+right")
        assert app.tabs.current.text.endswith("\n    if") and app.shown.text.startswith(" n < 2:")
        await pilot.press("ctrl+down")
        assert app.tabs.current.text.endswith("\n    if n < 2:\n")
        assert app.shown.text.startswith("        return n")
        await pilot.pause(settings.debounce_ms / 1000 * 3)
        assert len(fake_engine.requests) == requests


async def test_cached_suggestion_returns_without_a_request(settings, fake_engine):
    app = make_app(settings, fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        requests = len(fake_engine.requests)
        await pilot.press("escape", "ctrl+g")
        assert app.shown is not None and app.shown.text == SUGGESTION
        assert len(fake_engine.requests) == requests


async def test_typing_mid_generation_cancels_it(settings):
    engine = FakeEngine.from_trace(delay=0.0, hold_at=3)
    app = make_app(settings.replace(debounce_ms=10_000), engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine is not None)
        app.action_complete()
        await wait_for(pilot, lambda: engine.generations and engine.generations[0].held.is_set())
        await wait_for(pilot, lambda: app.tabs.current.ghost)
        first = engine.generations[0]
        await pilot.press("x")
        assert first.cancelled
        await wait_for(pilot, first.finished.is_set, timeout=2)
        assert app.tabs.current.ghost == [] and app.shown is None
        await pilot.press("ctrl+g")
        assert len(engine.requests) == 2 and engine.requests[1].prefix == "x"


async def test_the_ui_answers_keys_while_a_generation_runs(settings):
    engine = FakeEngine.from_trace(delay=0.15)  # about 4 s for the whole trace
    app = make_app(settings, engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine is not None)
        app.action_complete()
        await wait_for(pilot, lambda: app.denoise.trace is not None and app.denoise.trace.frames)
        start = time.monotonic()
        await pilot.press("f3")
        assert not app.denoise.display
        assert time.monotonic() - start < 1.0
        assert not engine.generations[0].finished.is_set()  # still generating
        await pilot.press("escape")
        assert engine.generations[0].cancelled


async def test_stop_rule_cancels_the_generation(settings, fake_engine):
    """Text right of the cursor: one line only, so the first newline stops the generation."""
    app = make_app(settings, fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine is not None)
        editor = app.tabs.current
        editor.insert("def fibonacci(n):\n)")
        editor.move_cursor((1, 0))
        app.action_complete()
        await wait_for(pilot, lambda: app.shown is not None and app.shown.final)
        assert fake_engine.requests[-1].config.stop == ["\n"]
        assert app.shown.text == "    if n < 2:"
        assert fake_engine.generations[-1].cancelled
        assert app.latency.records[-1].stop_reason == "cancelled"
        trace = app.denoise.trace  # the panel and the status line call it what it was
        assert end_reason(trace) == "done: stop rule"
        assert f"done {trace.n_tokens} tok" in str(app.query_one("#status-text").content)


async def test_a_final_suggestion_stops_even_an_engine_faster_than_the_screen(settings):
    """The pipeline judges the events in the worker thread: no forward pass runs after the one whose
    commit made the suggestion final, however far the engine is ahead of the app's messages."""
    engine = FakeEngine.from_trace(delay=0)
    app = make_app(settings.replace(max_lines=2), engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        steps, text = 0, ""
        for event in engine.events:  # the passes up to the commit that ends the second line
            steps += isinstance(event, Step)
            text += event.text if isinstance(event, Commit) else ""
            if text.count("\n") == 2:
                break
        assert app.shown.text == "    if n < 2:\n        return n" and engine.generations[-1].cancelled
        assert len(app.denoise.trace.frames) == steps + 1  # and the first block's masked input


async def test_alternatives_are_sampled_and_cycled(settings, fake_engine):
    app = make_app(settings.replace(alternatives=2), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        await wait_for(
            pilot,
            lambda: (
                len(fake_engine.requests) == 2
                and fake_engine.generations[1].finished.is_set()
                and app._inflight is None
            ),
        )
        second = fake_engine.requests[1].config
        assert (second.temperature, second.seed) == (0.8, 1)
        editor = app.tabs.current
        app._show(Shown(editor, app.shown.ctx, ["    a", "    b"]))
        await pilot.press("alt+right_square_bracket")
        assert app.shown.text == "    b" and editor.ghost == [[("    b", "text")]]
        await pilot.press("alt+left_square_bracket")
        assert app.shown.text == "    a"


async def test_the_next_suggestion_is_prefetched_and_tab_shows_it_at_once(settings, fake_engine):
    app = make_app(settings.replace(prefetch=True, debounce_ms=10_000), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine is not None)
        app.tabs.current.insert("def fibonacci(n):\n")
        app.action_complete()
        await wait_for(
            pilot, lambda: len(fake_engine.generations) == 2 and fake_engine.generations[1].finished.is_set()
        )
        ahead = fake_engine.requests[1]
        assert (ahead.prefix, ahead.suffix) == ("def fibonacci(n):\n" + SUGGESTION, "")  # as if accepted
        assert app.shown.text == SUGGESTION and app.denoise.trace is not None  # the prefetch is not shown
        frames = len(app.denoise.trace.frames)
        await pilot.press("tab")
        assert app.tabs.current.text == "def fibonacci(n):\n" + SUGGESTION
        assert (
            app.shown is not None and app.shown.final and app.shown.text == SUGGESTION
        )  # no debounce, no request
        assert len(fake_engine.requests) == 2 and len(app.denoise.trace.frames) == frames


async def held_suggestion(pilot, app: NemodiffApp, engine: FakeEngine) -> None:
    """Ask at the cursor; the generation holds at a step, then is let go."""
    app.action_complete()
    await wait_for(pilot, lambda: engine.generations[-1].held.is_set())
    engine.generations[-1].release()


async def test_a_prefetch_lives_through_partial_accepts_and_typing_ahead(settings):
    engine = FakeEngine.from_trace(delay=0.0, hold_at=3)
    app = make_app(settings.replace(prefetch=True, debounce_ms=10_000), engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine is not None)
        app.tabs.current.insert("def fibonacci(n):\n")
        await held_suggestion(pilot, app, engine)
        await wait_for(pilot, lambda: len(engine.generations) == 2 and engine.generations[1].held.is_set())
        prefetch = engine.generations[1]
        await pilot.press("ctrl+right", "space", "n", "ctrl+down")  # "    if", typed " n", then the line
        assert app.tabs.current.text == "def fibonacci(n):\n    if n < 2:\n" and not prefetch.cancelled
        await pilot.press("x")  # off the suggestion: the prefetch is of no use any more
        assert prefetch.cancelled


async def test_a_prefetch_is_dropped_when_the_cursor_leaves_and_adopted_when_accepted(settings):
    engine = FakeEngine.from_trace(delay=0.0, hold_at=3)
    app = make_app(settings.replace(prefetch=True, debounce_ms=10_000), engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine is not None)
        app.tabs.current.insert("def fibonacci(n):\n")
        for attempt in range(2):
            await held_suggestion(pilot, app, engine)
            await wait_for(pilot, lambda: app.shown is not None and app.shown.final)
            await wait_for(
                pilot,
                lambda: len(engine.generations) == 2 * attempt + 2 and engine.generations[-1].held.is_set(),
            )
            prefetch = engine.generations[-1]
            if attempt == 0:
                await pilot.press("up")  # the suggestion is gone: so is the prefetch
                assert prefetch.cancelled and app.shown is None
                await pilot.press("down")
                app.cache.clear()
        await pilot.press("tab")  # accepted while the prefetch runs: it becomes the cursor's request
        assert not prefetch.cancelled and app.denoise.trace is app._inflight.trace
        prefetch.release()
        await wait_for(pilot, lambda: app.shown is not None and app.shown.final)
        assert app.shown.text == SUGGESTION  # ... and the chain goes on: the next one is prefetched
        base = "def fibonacci(n):\n"
        assert [r.prefix for r in engine.requests[2:]] == [base, base + SUGGESTION, base + 2 * SUGGESTION]


async def test_keys_can_be_remapped(settings, fake_engine):
    app = make_app(settings.replace(keys={"accept": "ctrl+l"}), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        await pilot.press("ctrl+l")
        assert app.tabs.current.text == "def fibonacci(n):\n" + SUGGESTION


async def test_accept_then_save_writes_the_file(settings, fake_engine, tmp_path: Path):
    path = tmp_path / "fib.py"
    app = make_app(settings, fake_engine, [path])
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        await pilot.press("tab", "ctrl+s")
        assert path.read_text() == "def fibonacci(n):\n" + SUGGESTION
        assert not app.tabs.current.modified


async def test_save_asks_before_overwriting_a_file_changed_on_disk(settings, fake_engine, tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine, [path])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("y")
        path.write_text("changed elsewhere\n")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert path.read_text() == "changed elsewhere\n"
        await pilot.press("ctrl+s")
        await pilot.click("#confirm")
        assert path.read_text() == "yx = 1\n"


async def test_full_disk_on_save_is_a_notification(settings, fake_engine, tmp_path: Path, monkeypatch):
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    notes: list = []
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine, [path], notes)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("y")

        def full(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(files.os, "fsync", full)
        await pilot.press("ctrl+s")
        assert path.read_text() == "x = 1\n" and app.tabs.current.modified
        assert any("No space left" in message and severity == "error" for message, severity in notes)


async def test_binary_and_non_utf8_files_are_refused_untouched(settings, fake_engine, tmp_path: Path):
    binary, latin = tmp_path / "a.bin", tmp_path / "b.py"
    binary.write_bytes(b"\x00\x01\x02")
    latin.write_bytes(b"caf\xe9\n")
    notes: list = []
    app = make_app(settings, fake_engine, [binary, latin], notes)
    async with app.run_test(size=SIZE):
        assert [e.path for e in app.tabs.editors] == [None]  # a scratch buffer instead
        assert sum(severity == "error" for _, severity in notes) == 2
    assert binary.read_bytes() == b"\x00\x01\x02" and latin.read_bytes() == b"caf\xe9\n"


async def test_quit_asks_about_unsaved_changes(settings, fake_engine):
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a", "ctrl+q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert app.is_running
        await pilot.press("ctrl+q")
        await pilot.click("#confirm")
        await pilot.pause()
        assert not app.is_running


async def test_model_failure_is_a_notification_and_the_editor_stays_usable(settings):
    def broken(model: str, progress) -> FakeEngine:
        raise FileNotFoundError(f"no checkpoint at {model}")

    notes: list = []
    app = NemodiffApp([], settings.replace(model="/nowhere"), engine_factory=broken)
    notify = app.notify
    app.notify = lambda message, **kw: notes.append((message, kw.get("severity"))) or notify(message, **kw)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any(s == "error" for _, s in notes))
        assert "no checkpoint at /nowhere" in notes[-1][0]
        await pilot.press("a", "ctrl+g")
        assert app.tabs.current.text == "a" and app.engine is None


async def test_mode_switch_help_and_replay(settings, fake_engine):
    app = make_app(settings, fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        await pilot.press("f2")
        assert app.settings.mode == "self-spec" and app.shown is None and len(app.cache) == 0
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("f5")
        view = app.denoise
        assert view.playing and view.index == 0
        await pilot.press("alt+full_stop", "alt+full_stop")
        assert not view.playing and view.index == 2
        await pilot.press("alt+comma")
        assert view.index == 1
        header, events = load_trace()
        steps = [e for e in events if e.type == "step"]
        blocks = {e.block for e in steps if e.kind == "denoise"}  # each starts with its masked input
        assert len(view.trace.frames) == len(steps) + len(blocks)


async def test_settings_problems_are_notified(settings, fake_engine):
    notes: list = []
    app = NemodiffApp(
        [],
        settings.replace(keys={"nope": "x"}),
        engine_factory=fake_engine.factory,
        problems=["config.toml: broken"],
    )
    notify = app.notify
    app.notify = lambda message, **kw: notes.append(message) or notify(message, **kw)
    async with app.run_test(size=SIZE):
        assert "config.toml: broken" in notes and any("nope" in n for n in notes)


async def test_open_switch_and_close_tabs(settings, fake_engine, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("b.py").write_text("b = 2\n")
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o", *"b.py", "enter")
        assert [e.title for e in app.tabs.editors] == ["scratch", "b.py"]
        assert app.tabs.current.text == "b = 2\n"
        await pilot.press("alt+right")
        assert app.tabs.current.path is None
        await pilot.press("x", "alt+w")
        assert isinstance(app.screen, ConfirmScreen)  # the scratch buffer has unsaved text
        await pilot.click("#confirm")
        assert [e.title for e in app.tabs.editors] == ["b.py"]


async def test_paths_that_cannot_be_opened_or_saved_are_notifications(
    settings, fake_engine, tmp_path: Path, monkeypatch
):
    """A typo in a dialog never takes the app (and its unsaved buffers) down."""
    monkeypatch.chdir(tmp_path)
    Path("loop").symlink_to("loop")
    Path("mixed.py").write_bytes(b"a = 1\r\nb = 2\n")
    Path("formfeed.py").write_bytes(b"import os\n\x0c\ndef f():\n    pass\n")
    os.mkfifo("pipe")
    notes: list = []
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine, notes=notes)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        for path in ("loop", "n" * 300, "mixed.py", "formfeed.py", "pipe"):
            await app.open_path(Path(path))
            assert notes.pop()[1] == "error" and [e.title for e in app.tabs.editors] == ["scratch ●"]
        for key in ("ctrl+o", "ctrl+s"):  # open, and save as (the buffer has no path yet)
            await pilot.press(key, *"~nosuchuser-nd/a", "enter")
            await wait_for(pilot, lambda: len(notes) > 0)
            assert notes.pop()[1] == "error" and app.tabs.current.text == "x"
    assert Path("mixed.py").read_bytes() == b"a = 1\r\nb = 2\n"


async def test_the_latency_log_appends_json_lines_and_a_bad_path_turns_it_off(
    settings, fake_engine, tmp_path: Path, monkeypatch
):
    log = tmp_path / "latency.jsonl"
    for path, lines in ((log, 1), (tmp_path / "no-such-dir" / "latency.jsonl", 0)):
        monkeypatch.setenv("NEMODIFF_DEBUG_LOG", str(path))
        notes: list = []
        app = make_app(settings, fake_engine, notes=notes)
        async with app.run_test(size=SIZE) as pilot:
            await suggest(pilot, app)
            await pilot.pause(0.1)
        if lines:
            assert json.loads(log.read_text())["stop_reason"] == "eos" and all(
                n[1] == "information" for n in notes
            )
        else:
            assert (
                app.latency.path is None
                and notes[-1][1] == "warning"
                and "NEMODIFF_DEBUG_LOG" in notes[-1][0]
            )


async def test_a_failed_prefetch_leaves_the_shown_suggestion(settings, fake_engine):
    app = make_app(settings.replace(prefetch=True, debounce_ms=10_000), fake_engine)
    generate = fake_engine.generate

    class Failing:
        def __iter__(self):
            raise RuntimeError("backend went away")

        def cancel(self) -> None:
            pass

    def fail_the_prefetch(request):
        return Failing() if fake_engine.requests else generate(request)

    fake_engine.generate = fail_the_prefetch
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine is not None)
        app.tabs.current.insert("def fibonacci(n):\n")
        app.action_complete()
        await wait_for(pilot, lambda: app.shown is not None and app.shown.final and app._inflight is None)
        assert app.shown.text == SUGGESTION and app.tabs.current.ghost and len(fake_engine.requests) == 1


async def test_a_click_below_a_multi_line_ghost_lands_on_the_line_drawn_there(settings, fake_engine):
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        editor = app.tabs.current
        editor.insert("def fibonacci(n):\n\nprint(1)\nprint(2)\nprint(3)\n")
        editor.move_cursor((1, 0))
        editor.show_ghost([(SUGGESTION, "text")], 10)
        await pilot.pause()
        y = next(y for y, line in enumerate(drawn(editor, 8)) if "print(2)" in line)
        await pilot.click(CodeEditor, offset=(editor.gutter_width + 3, y))
        assert editor.cursor_location == (3, 3)
        editor.move_cursor((1, 0))
        editor.show_ghost([(SUGGESTION, "text")], 10)
        await pilot.pause()
        await pilot.click(CodeEditor, offset=(editor.gutter_width + 3, 2))  # on the ghost's second line
        assert editor.cursor_location == (1, 0)


async def test_command_palette_switches_mode(settings, fake_engine):
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p", *"Mode: ar")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.settings.mode == "ar")


async def test_ghost_wider_than_the_document_is_drawn_whole(settings, fake_engine):
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        editor = app.tabs.current
        editor.insert("f(\nz")
        editor.move_cursor((0, 2))
        editor.show_ghost([("x" * 60, "text"), ("\n" + "y" * 70, "guess")], 10)
        await pilot.pause()
        lines = drawn(editor, 3)
        assert "f(" + "x" * 60 in lines[0] and "y" * 70 in lines[1] and lines[2].startswith("2  z")
