"""Keys a user of an ordinary terminal presses: escape, closing tabs, cycling, moving, indenting,
and the palette's commands for files and suggestions."""

from __future__ import annotations

from pathlib import Path

from textual.command import CommandPalette

from nemodiff_tui.app import NemodiffApp, Shown
from nemodiff_tui.config import load_settings
from nemodiff_tui.widgets.dialogs import ConfirmScreen, PromptScreen
from nemodiff_tui.widgets.help import HelpScreen
from tests.tui.pilot_helpers import wait_for
from tests.tui.test_tui_app import SIZE, make_app, suggest


async def test_escape_without_a_suggestion_keeps_the_editor_focused(settings, fake_engine):
    app = make_app(settings, fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        await pilot.press("escape", "escape", "escape")  # the first dismisses, the others do nothing
        assert app.focused is app.tabs.current and app.shown is None
        await pilot.press("x", "space")
        assert app.tabs.current.text.endswith("x ") and not app.denoise.playing


async def test_the_denoising_view_hands_focus_back_with_escape(settings, fake_engine):
    app = make_app(settings, fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        app.denoise.focus()
        await pilot.press("escape")
        assert app.focused is app.tabs.current


async def test_default_keys_cycle_step_and_close_and_the_alt_keys_still_do(settings, fake_engine):
    app = make_app(settings.replace(alternatives=2), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        # both alternatives generated and handled: a late second one would join the list set below
        await wait_for(
            pilot,
            lambda: (
                len(fake_engine.generations) == 2
                and fake_engine.generations[-1].finished.is_set()
                and app._inflight is None
            ),
        )
        editor = app.tabs.current
        app._show(Shown(editor, app.shown.ctx, ["    a", "    b", "    c"]))
        await pilot.press("f8")
        assert app.shown.text == "    b"
        await pilot.press("shift+f8", "shift+f8")
        assert app.shown.text == "    c"
        await pilot.press("alt+right_square_bracket")
        assert app.shown.text == "    a" and editor.text == "def fibonacci(n):\n"  # nothing typed
        await pilot.press("f5", "f9", "f9", "shift+f9")
        assert app.denoise.index == 1
        await pilot.press("alt+full_stop")
        assert app.denoise.index == 2
        await pilot.press("ctrl+w")
        assert isinstance(app.screen, ConfirmScreen)  # unsaved: asks
        await pilot.press("escape")
        await pilot.press("ctrl+n", "alt+w")  # an empty buffer closes at once
        assert len(app.tabs.editors) == 1 and app.tabs.current.text.startswith("def fibonacci")


async def test_ctrl_w_in_a_dialog_edits_its_input_and_closes_nothing(settings, fake_engine):
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o", *"some path", "ctrl+w")
        assert isinstance(app.screen, PromptScreen) and len(app.tabs.editors) == 1


async def test_enter_indents_like_the_line_above_and_more_after_a_colon(settings, fake_engine):
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(
            *"def f(x):",
            "enter",
            *"if x:",
            "enter",
            *"y = [",
            "enter",
            "backspace",
            *"1,",
            "enter",
            *"2]",
            "enter",
            *"z",
        )
        assert (
            app.tabs.current.text
            == "def f(x):\n    if x:\n        y = [\n           1,\n           2]\n           z"
        )


async def test_ctrl_home_ctrl_end_and_go_to_line(settings, fake_engine, tmp_path: Path):
    path = tmp_path / "long.py"
    path.write_text("".join(f"x{i} = {i}\n" for i in range(500)))
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine, [path])
    async with app.run_test(size=SIZE) as pilot:
        editor = app.tabs.current
        await pilot.press("ctrl+end")
        assert editor.cursor_location == (500, 0) and editor.scroll_offset.y > 0
        await pilot.press("ctrl+home")
        assert editor.cursor_location == (0, 0) and editor.scroll_offset.y == 0
        await pilot.press("ctrl+l", *"250", "enter")
        assert editor.cursor_location == (249, 0) and app.focused is editor
        assert editor.scroll_offset.y < 249 < editor.scroll_offset.y + editor.size.height
        await pilot.press("ctrl+l", *"9999", "enter")
        assert editor.cursor_location == (500, 0)
        await pilot.press("ctrl+shift+home")
        assert editor.selected_text == editor.text


async def run_command(pilot, app: NemodiffApp, name: str) -> None:
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
    await pilot.press(*name)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette))


async def test_palette_saves_as_reloads_and_closes(settings, fake_engine, tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_text("a = 1\n")
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine, [path])
    async with app.run_test(size=SIZE) as pilot:
        editor = app.tabs.current
        editor.insert("b = 2\n")
        await run_command(pilot, app, "Save as")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press("ctrl+a", "ctrl+k", *str(tmp_path / "b.py"), "enter")
        assert (tmp_path / "b.py").read_text() == "b = 2\na = 1\n" and editor.path == tmp_path / "b.py"
        (tmp_path / "b.py").write_text("changed outside\n")
        await run_command(pilot, app, "Reload from disk")
        assert editor.text == "changed outside\n" and not editor.modified
        await run_command(pilot, app, "Close tab")
        assert [e.title for e in app.tabs.editors] == ["scratch"]


async def test_saving_a_read_only_file_is_refused(settings, fake_engine, tmp_path: Path):
    path = tmp_path / "a.py"
    path.write_text("a = 1\n")
    path.chmod(0o444)
    notes: list = []
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine, [path], notes)
    async with app.run_test(size=SIZE) as pilot:
        app.tabs.current.insert("b = 2\n")
        await pilot.press("ctrl+s")
        assert path.read_text() == "a = 1\n" and app.tabs.current.modified
        assert any("read-only" in message and severity == "error" for message, severity in notes)


async def test_help_names_keys_as_typed_and_lists_the_panel_keys(settings, fake_engine):
    app = make_app(settings.replace(keys={"next-suggestion": "f8,alt+right_square_bracket"}), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        rows = {keys: binding_id for keys, _, binding_id in app.screen.keys}
        assert rows["f8, alt+]"] == "next-suggestion" and rows["ctrl+w, alt+w"] == "close"
        assert rows["ctrl+home, ctrl+end"] == ""
        assert ("←", "Step back") in app.screen.panel


async def test_key_remaps_onto_taken_keys_are_reported(settings, fake_engine):
    notes: list = []
    keys = {"accept": "tab,ctrl+k", "complete": "ctrl+o", "mode": "x", "panel": "f3,ctrl+t"}
    app = make_app(settings.replace(keys=keys), fake_engine, notes=notes)
    async with app.run_test(size=SIZE):
        problems = [message for message, _ in notes if message.startswith("[keys]")]
        assert len(problems) == 3, problems  # ctrl+t is free
        assert any("ctrl+k" in p and "delete to line end" in p for p in problems)
        assert any("ctrl+o" in p and "'open'" in p for p in problems)
        assert any("'x'" in p and "types" in p for p in problems)


async def test_a_theme_chosen_in_the_palette_is_saved_for_the_next_start(settings, fake_engine):
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine)
    app.settings_path.parent.mkdir(parents=True, exist_ok=True)
    app.settings_path.write_text('# mine\nmode = "ar"\n\n[keys]\naccept = "tab"\n')
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, app, "Theme: nemodiff-light")
        assert app.theme == "nemodiff-light"
    assert (
        app.settings_path.read_text()
        == '# mine\nmode = "ar"\n\ntheme = "nemodiff-light"\n[keys]\naccept = "tab"\n'
    )
    settings_, problems = load_settings(app.settings_path)
    assert settings_.theme == "nemodiff-light" and settings_.keys == {"accept": "tab"} and not problems


async def test_mode_changes_do_not_stack_notifications(settings, fake_engine):
    app = make_app(settings.replace(debounce_ms=10_000), fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.engine is not None)
        app.clear_notifications()
        await pilot.press("f2", "f2", "f2")
        assert len(app._notifications) == 0
        assert f"mode {app.settings.mode}" in str(app.query_one("#status-text").content)


async def test_other_languages_get_a_one_line_hint_once(settings, fake_engine, tmp_path: Path):
    for name in ("a.js", "b.js", "c.py"):
        (tmp_path / name).write_text("x\n")
    notes: list = []
    app = make_app(
        settings.replace(debounce_ms=10_000),
        fake_engine,
        [tmp_path / n for n in ("a.js", "b.js", "c.py")],
        notes,
    )
    async with app.run_test(size=SIZE):
        hints = [message for message, _ in notes if "Python only" in message]
        assert len(hints) == 1 and "JavaScript" in hints[0]
