"""Watch-mode fixtures: sessions on a temporary folder, with a real watchdog observer (real
filesystem events) and the fake engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.request import GenerationConfig
from nemodiff_tui.watch.session import WatchSession
from tests.watch.util import QUIET, FakeEngine


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[Callable[..., WatchSession]]:
    """`watch(*paths, engine=..., **options)`: a started session (default: on tmp_path, fake engine)."""
    sessions: list[WatchSession] = []

    def make(*paths: Path, engine: FakeEngine | None = None, **options) -> WatchSession:
        options.setdefault("quiet", QUIET)
        session = WatchSession(list(paths) or [tmp_path], GenerationConfig(max_new_tokens=16), **options)
        session.set_engine(engine or FakeEngine())
        session.start()
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.stop()
