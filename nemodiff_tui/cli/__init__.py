"""The `nemodiff` command: the app by default, and headless subcommands.

Bad input (a missing checkpoint, an unknown mode, undecodable bytes) prints one line on stderr
and exits 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys

from nemodiff_tui.cli import bench, checkpoint, complete, eval_fim

COMMANDS = (complete, checkpoint, bench, eval_fim)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nemodiff", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from engine.errors import NemodiffError

    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.command is None:
        args.run = None
        parser().print_help()
        return 0
    try:
        return args.run(args)
    except (NemodiffError, ValueError, OSError) as e:
        if args.debug:
            raise
        print(f"nemodiff: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
