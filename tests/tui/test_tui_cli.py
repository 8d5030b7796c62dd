"""`nemodiff [FILE...]` wiring: arguments override the config file, which overrides defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from nemodiff_tui.app import NemodiffApp
from nemodiff_tui.cli.app import add_app_args, run


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[NemodiffApp]:
    apps: list[NemodiffApp] = []
    monkeypatch.setattr(NemodiffApp, "run", lambda self: apps.append(self))
    return apps


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_app_args(p)
    return p.parse_args(argv)


def test_arguments_override_the_config(tmp_path: Path, started: list[NemodiffApp]):
    config = tmp_path / "c.toml"
    config.write_text('mode = "ar"\nmodel = "/models/x"\ndebounce_ms = 120\n')
    assert run(parse("a.py", "--mode", "self-spec", "--config", str(config))) == 0
    (app,) = started
    assert (app.settings.mode, app.settings.model, app.settings.debounce_ms) == (
        "self-spec",
        "/models/x",
        120,
    )
    assert app.settings_path == config


def test_defaults_and_a_broken_config(
    tmp_path: Path, started: list[NemodiffApp], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "nemodiff").mkdir()
    (tmp_path / "nemodiff" / "config.toml").write_text("mode = \n")
    assert run(parse()) == 0
    (app,) = started
    assert app.settings.model == "demo" and app._problems


def test_missing_config_file_is_an_error(tmp_path: Path, started: list[NemodiffApp], capsys):
    from nemodiff_tui.cli import main

    assert main(["--config", str(tmp_path / "none.toml")]) == 2
    assert "no settings file" in capsys.readouterr().err and not started
