"""`nemodiff [FILE...]`: the Textual app, on the bundled demo model or `--model`.

Settings come from the XDG config file (or `--config`); the options here override them.
"""

from __future__ import annotations

import argparse

from engine.request import MODES
from nemodiff_tui.cli.common import (
    DEVICE_HELP,
    DTYPE_HELP,
    MODEL_HELP,
    add_backend_args,
    add_config_arg,
    resolve_settings,
)


def add_app_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE", help="files to open (none: a scratch buffer)")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument(
        "--mode", choices=MODES, default=None, help="decoding mode (default: the settings file's, else auto)"
    )
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument("--dtype", default=None, help=DTYPE_HELP)
    p.add_argument(
        "--theme", default=None, help="nemodiff-dark (default), nemodiff-light, or a Textual theme"
    )
    add_backend_args(p)
    add_config_arg(p)
    p.set_defaults(shows_problems=True)  # in the app, as notifications


def run(args: argparse.Namespace) -> int:
    from nemodiff_tui.app import NemodiffApp
    from nemodiff_tui.engine_factory import engine_factory

    resolved = resolve_settings(args)
    settings = resolved.settings
    factory = engine_factory(settings.device, settings.dtype, args.backend, args.backend_key)
    NemodiffApp(
        args.files, settings, engine_factory=factory, problems=resolved.problems, settings_path=resolved.path
    ).run()
    return 0
