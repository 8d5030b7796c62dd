"""The denoising panel and the status line tell the truth about the suggestion on screen."""

from __future__ import annotations

from tests.tui.fake_app import SampledEngine
from tests.tui.fake_engine import FakeEngine
from tests.tui.pilot_helpers import wait_for
from tests.tui.test_tui_app import SIZE, make_app, suggest


def status(app) -> str:
    return str(app.query_one("#status-text").content)


async def test_the_panel_shows_the_generation_of_the_alternative_on_screen(settings):
    engine = SampledEngine.from_trace(delay=0.0)
    app = make_app(settings.replace(alternatives=2), engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        await wait_for(pilot, lambda: len(app.shown.alternatives) == 2)
        first = app.denoise.trace
        assert first.label == "suggestion" and first.text.startswith("    if n < 2")  # not the alternative's
        await pilot.press("f8")
        second = app.denoise.trace
        assert second.label == "alternative 2" and second.text.startswith("    if n <= 1")
        assert "alternative 2" in str(app.denoise.render())
        await pilot.press("f8")
        assert app.denoise.trace is first


async def test_a_new_request_keeps_the_last_generation_on_the_panel_until_its_first_pass(settings):
    engine = FakeEngine.from_trace(delay=0.0)
    app = make_app(settings, engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        before = app.denoise.trace
        engine.hold_at = 0  # the next generation waits before its first pass
        app.tabs.current.insert("x = 1\n")
        await wait_for(pilot, lambda: engine.generations[-1].held.is_set())
        assert app.denoise.shown is before and "No generation yet" not in str(app.denoise.render())
        assert "next one is starting" in str(app.denoise.render())
        assert "generating 0 tok" in status(app)
        engine.generations[-1].release()
        await wait_for(pilot, lambda: app.denoise.shown is not before)


async def test_the_cursor_line_keeps_the_ghost_and_syntax_colours(settings, fake_engine):
    app = make_app(settings, fake_engine)
    async with app.run_test(size=SIZE) as pilot:
        await suggest(pilot, app)
        editor = app.tabs.current
        on_cursor_line = [s for s in editor.render_line(1) if "if n < 2" in s.text]
        below = [s for s in editor.render_line(2) if "return n" in s.text]
        assert on_cursor_line and all(s.style.dim and s.style.italic for s in on_cursor_line)
        assert {s.style.color for s in on_cursor_line} == {s.style.color for s in below}  # as dim as the rest
        editor.move_cursor((0, 3))
        await pilot.pause()
        keyword = next(s for s in editor.render_line(0) if s.text == "def")
        assert keyword.style.color != editor.rich_style.color  # syntax colour on the cursor's line
