"""Start-up: settings, the app's argument parsing and the editor's modules do not wait for torch."""

from __future__ import annotations

import subprocess
import sys

from nemodiff_tui.cli import COMMANDS, parser


def test_the_command_names_are_the_parsers():
    """`main` tells a command from a file by COMMANDS without building the parser (which loads torch)."""
    assert set(COMMANDS) == parser()[1]


def test_settings_and_the_editor_load_without_torch():
    code = (
        "import sys, engine, nemodiff_tui.app, nemodiff_tui.cli.common\n"
        "from nemodiff_tui.cli import app_parser\n"
        "from nemodiff_tui.config import load_settings\n"
        "app_parser().parse_args(['a.py', '--mode', 'ar']); load_settings()\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
        "engine.Engine  # the engine itself brings torch when first used\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True"]
