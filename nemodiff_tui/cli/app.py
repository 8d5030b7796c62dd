"""`nemodiff [FILE...]`: the Textual app, on the bundled demo model or `--model`.

Settings come from the XDG config file (or `--config`); the options here override them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.request import MODES
from nemodiff_tui.cli.common import DTYPE_HELP, add_backend_args


def add_app_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE", help="files to open (none: a scratch buffer)")
    p.add_argument("--model", default=None, help="checkpoint directory, Hugging Face repo id, or 'demo' (default)")
    p.add_argument("--mode", choices=MODES, default=None, help="decoding mode (default: the config's, else auto)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default=None, help=DTYPE_HELP)
    p.add_argument("--theme", default=None, help="nemodiff-dark (default), nemodiff-light, or a Textual theme")
    add_backend_args(p)
    p.add_argument("--config", type=Path, default=None, metavar="PATH",
                   help="settings file (default: $XDG_CONFIG_HOME/nemodiff/config.toml)")


def run(args: argparse.Namespace) -> int:
    from nemodiff_tui.app import NemodiffApp
    from nemodiff_tui.backend import engine_factory
    from nemodiff_tui.config import config_path, load_settings

    path = args.config or config_path()
    if args.config is not None and not path.is_file():
        print(f"nemodiff: error: no settings file at {path}", file=sys.stderr)
        return 2
    settings, problems = load_settings(path)
    overrides = {name: getattr(args, name) for name in ("model", "mode", "device", "dtype", "theme")}
    settings = settings.replace(**{k: v for k, v in overrides.items() if v is not None})
    factory = engine_factory(settings.device, settings.dtype, args.backend, args.backend_key)
    NemodiffApp(args.files, settings, engine_factory=factory, problems=problems, settings_path=path).run()
    return 0
