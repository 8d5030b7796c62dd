"""Snapshots at a fixed terminal size: the editor with ghost text, and the denoising view mid-step.

Update after an intended change of the look with `pytest tests/tui --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

from nemodiff_tui.app import NemodiffApp
from nemodiff_tui.config import Settings
from nemodiff_tui.widgets.dialogs import ConfirmScreen
from tests.tui.fake_engine import FakeEngine
from tests.tui.pilot_helpers import wait_for

SIZE = (100, 30)
SETTINGS = Settings(debounce_ms=10_000, cursor_blink=False, mode="diffusion")


def make_app(engine: FakeEngine, directory: Path) -> NemodiffApp:
    """The app on a saved `fib.py` (an unchanging tab label keeps the tab underline still)."""
    path = directory / "fib.py"
    path.write_text("def fibonacci(n):\n")
    app = NemodiffApp([path], SETTINGS, engine_factory=engine.factory)
    app.animation_level = "none"
    return app


async def complete_at_end(pilot, app: NemodiffApp) -> None:
    await wait_for(pilot, lambda: app.engine is not None)
    app.tabs.current.move_cursor((1, 0))
    app.action_complete()


async def show_final_suggestion(pilot, app: NemodiffApp) -> None:
    await complete_at_end(pilot, app)
    await wait_for(pilot, lambda: app.shown is not None and app.shown.final)
    app.clear_notifications()


def test_editor_with_ghost_text(snap_compare, tmp_path: Path):
    app = make_app(FakeEngine.from_trace(delay=0.0), tmp_path)

    async def run_before(pilot) -> None:
        await show_final_suggestion(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_denoising_view_mid_generation(snap_compare, tmp_path: Path):
    app = make_app(FakeEngine.from_trace(delay=0.0, hold_at=9), tmp_path)

    async def run_before(pilot) -> None:
        await complete_at_end(pilot, app)
        await wait_for(
            pilot, lambda: app.denoise.trace is not None and len(app.denoise.trace.frames) == 10
        )  # 9 passes and the masked input
        app.clear_notifications()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_confirm_dialog_wraps_in_a_narrow_terminal(snap_compare, tmp_path: Path):
    app = make_app(FakeEngine.from_trace(delay=0.0), tmp_path)

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: app.engine is not None)
        app.clear_notifications()
        app.push_screen(
            ConfirmScreen("Unsaved changes in scratch, fib.py, a_long_file_name.py. Quit anyway?", "Quit")
        )

    assert snap_compare(app, terminal_size=(50, 16), run_before=run_before)


def test_help_names_keys_as_typed(snap_compare, tmp_path: Path):
    app = make_app(FakeEngine.from_trace(delay=0.0), tmp_path)

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: app.engine is not None)
        app.clear_notifications()
        await pilot.press("f1")

    assert snap_compare(app, terminal_size=(100, 40), run_before=run_before)


def test_replay_shows_a_block_of_masks(snap_compare, tmp_path: Path):
    app = make_app(FakeEngine.from_trace(delay=0.0), tmp_path)

    async def run_before(pilot) -> None:
        await show_final_suggestion(pilot, app)
        await pilot.press("f5", "f9")  # play from the start, pause one pass on: the block's masked input

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
