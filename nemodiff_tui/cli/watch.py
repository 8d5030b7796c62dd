"""`nemodiff watch`: fill-in-the-middle suggestions whenever a file is saved in any other editor.

`nemodiff watch PATH...` opens the watch app; `nemodiff watch --once FILE --json` fills FILE's
markers, prints the suggestions and exits (no UI), for editors to script against. The rules are
in docs/WATCH.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from engine.request import GenerationConfig
from nemodiff_tui import files
from nemodiff_tui.cli.common import (
    add_backend_args,
    add_generation_args,
    add_model_args,
    apply_kernels,
    generation_config,
    open_engine,
    resolve_settings,
)
from nemodiff_tui.config import Settings
from nemodiff_tui.watch import WatchError
from nemodiff_tui.watch.holes import MARKER
from nemodiff_tui.watch.ignore import MAX_BYTES


def byte_limit(value: str) -> int:
    """--max-bytes: positive, and no more than the editor reads (files.MAX_BYTES), which holds anyway."""
    number = int(value)
    if not 0 < number <= files.MAX_BYTES:
        raise argparse.ArgumentTypeError(
            f"must be from 1 to {files.MAX_BYTES:,} (4 MiB, the largest file nemodiff reads), got {number:,}"
        )
    return number


def register(sub) -> None:
    p = sub.add_parser("watch", help="suggest fill-ins whenever a watched file is saved (docs/WATCH.md)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files and folders to watch")
    p.add_argument(
        "--once", metavar="FILE", help="fill FILE's markers once, print the suggestions and exit (no UI)"
    )
    p.add_argument("--json", action="store_true", help="with --once: print one JSON object")
    p.add_argument("--marker", default=MARKER, help=f"the text that marks a hole (default {MARKER})")
    p.add_argument(
        "--max-bytes", type=byte_limit, default=MAX_BYTES, help=f"skip larger files (default {MAX_BYTES:,})"
    )
    add_model_args(p)
    add_backend_args(p)
    add_generation_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.json and not args.once:
        raise WatchError("--json goes with --once FILE")
    resolved = resolve_settings(args)
    settings = resolved.settings
    config = generation_config(args)
    if args.once:
        return once(args, settings, config)
    if not args.paths:
        raise WatchError("give the files and folders to watch, or --once FILE")
    from nemodiff_tui.engine_factory import engine_factory
    from nemodiff_tui.watch.session import WatchSession
    from nemodiff_tui.watch_app import WatchApp

    apply_kernels(args)
    session = WatchSession(
        [Path(p) for p in args.paths], config, marker=args.marker, max_bytes=args.max_bytes, settings=settings
    )
    settings = settings.replace(mode=config.mode)
    session.start()
    try:
        WatchApp(
            session,
            settings,
            engine_factory=engine_factory(settings.device, settings.dtype, args.backend, args.backend_key),
            problems=resolved.problems,
        ).run()
    finally:
        session.stop()
    return 0


def once(args: argparse.Namespace, settings: Settings, config: GenerationConfig) -> int:
    """Fill the markers of one file and print the suggestions."""
    from nemodiff_tui.files import FileRefused
    from nemodiff_tui.watch.holes import check_marker, find_markers
    from nemodiff_tui.watch.ignore import read_watched
    from nemodiff_tui.watch.suggestions import Suggestion, generate

    check_marker(args.marker)
    path = Path(args.once).expanduser().absolute()
    try:
        text, sha256 = read_watched(path, args.max_bytes)
    except FileRefused as e:
        raise WatchError(str(e)) from None
    holes = find_markers(text, args.marker)
    suggestions = [
        Suggestion.at(i, path, text, sha256, hole, settings.context_chars, time.monotonic())
        for i, hole in enumerate(holes)
    ]
    if suggestions:
        eng = open_engine(args)
        for s in suggestions:
            s.status = "denoising"
            generate(eng, s, config, settings.max_lines)
    if args.json:
        print(
            json.dumps(
                {"path": str(path), "sha256": sha256, "suggestions": [s.to_json() for s in suggestions]}
            )
        )
    elif not suggestions:
        print(f"{args.once}: no {args.marker} marker")
    else:
        for s in suggestions:
            print(
                f"{args.once}:{s.line}:{s.column}: ({s.mode}, {s.tokens_per_forward:.2f} tokens/forward)\n{s.text}"
            )
    return 0
