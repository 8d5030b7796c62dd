"""Every command resolves its settings once: flags over the settings file (`--config`) over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemodiff_tui.cli import main, parser
from nemodiff_tui.cli.common import resolve_settings


def test_flags_win_over_the_file_which_wins_over_the_defaults(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('model = "/models/x"\ndevice = "cuda"\nmode = "ar"\n')
    args = parser()[0].parse_args(["serve", "--config", str(config), "--device", "cpu"])
    settings = resolve_settings(args).settings
    assert (settings.model, settings.device, settings.mode, settings.dtype) == (
        "/models/x",
        "cpu",
        "ar",
        None,
    )
    assert resolve_settings(args) is resolve_settings(args)  # resolved once per invocation


def test_every_command_takes_config_and_reports_its_problems_on_one_line(tmp_path: Path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('mode = "fast"\ncolour = 1\n')
    assert main(["random-checkpoint", str(tmp_path / "ckpt"), "--size", "tiny", "--config", str(config)]) == 0
    warnings = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("nemodiff: warning:")
    ]
    assert (
        len(warnings) == 1
        and "unknown mode 'fast'" in warnings[0]
        and "unknown setting 'colour'" in warnings[0]
    )


def test_every_command_accepts_config(capsys):
    headless, commands = parser()
    for command in sorted(commands):
        with pytest.raises(SystemExit):
            headless.parse_args([command, "--help"])
        assert "--config PATH" in capsys.readouterr().out, command


def test_a_missing_settings_file_is_a_one_line_error(tmp_path: Path, capsys):
    for argv in (["complete", "--prompt", "x"], ["random-checkpoint", str(tmp_path / "ckpt")]):
        assert main([*argv, "--config", str(tmp_path / "none.toml")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nemodiff: error: no settings file at") and len(err.splitlines()) == 1
