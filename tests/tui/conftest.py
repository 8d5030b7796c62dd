"""Fixtures for the app's tests: a recorded engine and settings that keep tests fast and stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemodiff_tui.config import Settings
from tests.tui.fake_engine import FakeEngine


@pytest.fixture(autouse=True)
def _no_debug_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never append to a developer's latency log, nor read their config."""
    monkeypatch.delenv("NEMODIFF_DEBUG_LOG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def settings() -> Settings:
    """Prefetching is off: most tests count the engine's requests (tests of it turn it on)."""
    return Settings(debounce_ms=100, cursor_blink=False, mode="diffusion", prefetch=False)


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine.from_trace(delay=0.005)
