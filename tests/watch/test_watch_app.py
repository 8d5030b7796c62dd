"""The watch app: saves show up in the list and the denoising view; a, r and c act on the selection."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from engine.request import GenerationConfig
from nemodiff_tui.config import Settings
from nemodiff_tui.watch.session import WatchSession
from nemodiff_tui.watch_app import WatchApp
from nemodiff_tui.widgets.watch_list import SuggestionDetail, SuggestionList
from tests.watch.util import ANSWER, QUIET, FakeEngine


@pytest.fixture
def app_on() -> Iterator[Callable[..., WatchApp]]:
    """`app_on(folder, quiet=...)`: a watch app on a started session (stopped after the test)."""
    sessions: list[WatchSession] = []

    def make(folder, quiet: float = QUIET) -> WatchApp:
        session = WatchSession([folder], GenerationConfig(max_new_tokens=16), quiet=quiet)
        session.start()
        sessions.append(session)
        return WatchApp(session, Settings(model="fake"), engine_factory=lambda model, progress: FakeEngine())

    yield make
    for session in sessions:
        session.stop()


async def until(pilot, condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.02)


def rows(app: WatchApp) -> list[str]:
    options = app.query_one(SuggestionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_a_save_is_listed_previewed_and_accepted(tmp_path, app_on):
    app = app_on(tmp_path)
    path = tmp_path / "a.py"
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.model_state == "fake")
        path.write_text("def f():\n    # <fill>\n")
        await until(pilot, lambda: any("ready" in row for row in rows(app)))
        assert rows(app)[0].startswith(f"● {tmp_path.name}/a.py:2  ready")  # within the watched folder
        status = str(app.query_one("#status-text").content)
        assert "watching 1 folder, 0 files" in status and "1 suggestion " in status + " "
        detail = str(app.query_one(SuggestionDetail).render())
        assert ANSWER in detail and f"+    {ANSWER}" in detail and "-    # <fill>" in detail
        assert app.denoise.trace is app.session.suggestions[0].trace and app.denoise.frame is not None
        await pilot.press("c")
        assert app.clipboard == ANSWER
        await pilot.press("a")
        assert path.read_text() == f"def f():\n    {ANSWER}\n"
        await until(pilot, lambda: rows(app) == [])


async def test_reject_drops_the_suggestion_and_writes_nothing(tmp_path, app_on):
    app = app_on(tmp_path)
    path = tmp_path / "a.py"
    async with app.run_test(size=(120, 40)) as pilot:
        path.write_text("x = <fill>\n")
        await until(pilot, lambda: any("ready" in row for row in rows(app)))
        await pilot.press("r")
        await until(pilot, lambda: rows(app) == [])
        assert path.read_text() == "x = <fill>\n"


async def test_accept_after_an_outside_change_writes_nothing(tmp_path, app_on):
    app = app_on(tmp_path, quiet=5.0)  # the watcher stays behind: only accept can notice
    session = app.session
    path = tmp_path / "a.py"
    async with app.run_test(size=(120, 40)) as pilot:
        path.write_text("x = <fill>\n")
        session.refresh(path)
        await until(pilot, lambda: any("ready" in row for row in rows(app)))
        path.write_text("x = <fill>  # edited\n")
        await pilot.press("a")
        assert path.read_text() == "x = <fill>  # edited\n"
        await until(
            pilot, lambda: session.suggestions and session.suggestions[0].source.endswith("# edited\n")
        )


async def test_a_model_that_fails_to_load_is_reported(tmp_path, app_on):
    app = app_on(tmp_path)

    def broken(model, progress):
        raise OSError("no such checkpoint")

    app._factory = broken
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "failed to load" in app.model_state)
        assert "failed to load" in str(app.query_one("#status-text").render())


async def test_a_change_that_arrives_while_the_app_closes_is_dropped(tmp_path, app_on):
    # The session's threads post changes at any time; one handled after the widgets are gone
    # crashed the closing app (seen with a suggestion finishing as the test quit).
    app = app_on(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.model_state == "fake")
        await app.screen.query_one("#watch-main").remove()
        app.on_watch_changed(None)


async def test_a_burst_of_changes_is_drawn_once(tmp_path, app_on, monkeypatch):
    """Every denoising step of every suggestion posts a change; drawing each one made the app
    fall seconds behind the keyboard (20 markers: 4.8 s to handle a key)."""
    from nemodiff_tui.watch_app import WatchChanged

    app = app_on(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.model_state == "fake")
        drawn = []
        redraw = app._redraw
        monkeypatch.setattr(app, "_redraw", lambda: (drawn.append(1), redraw())[1])
        for _ in range(50):
            app.post_message(WatchChanged(None))
        await pilot.pause(0.2)
        assert 1 <= len(drawn) <= 3


async def test_retry_after_a_reject_asks_again_sampled(tmp_path, app_on):
    app = app_on(tmp_path)
    path = tmp_path / "a.py"
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.model_state == "fake")
        await pilot.press("g")  # nothing rejected yet: nothing happens
        path.write_text("x = <fill>\n")
        await until(pilot, lambda: any("ready" in row for row in rows(app)))
        await pilot.press("r")
        await until(pilot, lambda: rows(app) == [])
        await pilot.press("g")
        await until(pilot, lambda: any("ready" in row for row in rows(app)))
        (retried,) = app.session.suggestions
        assert retried.line == 1 and retried.seed == 1
        config = app.session._worker._engine.requests[-1].config
        assert config.temperature > 0 and config.seed == 1
        assert path.read_text() == "x = <fill>\n"
