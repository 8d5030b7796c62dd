"""The `nemodiff` command: the app by default, and headless subcommands.

Bad input (a missing checkpoint, an unknown mode, undecodable bytes) prints one line on stderr
and exits 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

# Idle OpenMP threads must sleep, not spin: on a busy machine spinning threads slow training
# steps several-fold. Read when torch loads, so it is set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

USAGE = "nemodiff [--debug] [FILE...] [options]   or   nemodiff [--debug] COMMAND [options]"
# The headless commands' names: a first word among them (or -h) builds their parser, which imports
# torch (seconds); anything else opens the editor without waiting for it. A test keeps this in step.
COMMANDS = (
    "complete",
    "eval-fim",
    "bench",
    "serve",
    "watch",
    "random-checkpoint",
    "train-demo",
    "train-draft",
)


class Parser(argparse.ArgumentParser):
    """Bad arguments are one line that says where the usage is, not the usage block and then the
    error (subcommands' parsers are of this class too)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> tuple[argparse.ArgumentParser, set[str]]:
    """The headless subcommands, and their names."""
    p = Parser(
        prog="nemodiff",
        usage=USAGE,
        description=__doc__.splitlines()[0],
        epilog="With no COMMAND, nemodiff opens the editor app: nemodiff [FILE...] --help",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    # prog: the subcommands' usage lines start `nemodiff serve`, not with the whole USAGE above
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True, prog="nemodiff")
    from nemodiff_tui.cli import bench, checkpoint, complete, eval_fim, serve, train, watch  # torch: seconds

    from nemodiff_tui.cli.common import add_config_arg

    for command in (complete, eval_fim, bench, serve, watch, checkpoint, train):
        command.register(sub)
    for command_parser in sub.choices.values():
        add_config_arg(command_parser)
    return p, set(sub.choices)


def app_parser() -> argparse.ArgumentParser:
    """`nemodiff [FILE...]`: the editor app."""
    p = Parser(prog="nemodiff", description="The nemodiff editor: completion and FIM as you type.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    from nemodiff_tui.cli import app

    app.add_app_args(p)
    p.set_defaults(run=app.run)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    words = [a for a in argv if a != "--debug"]
    try:  # Ctrl-C while torch loads (the first seconds) ends quietly too
        from engine.errors import NemodiffError, kernels_clash_explained

        command = words and (words[0] in COMMANDS or words[0] in ("-h", "--help"))
        args = (parser()[0] if command else app_parser()).parse_args(argv)
    except KeyboardInterrupt:
        return 130
    try:
        from nemodiff_tui.cli.common import resolve_settings

        problems = resolve_settings(args).problems
        if problems and not getattr(args, "shows_problems", False):
            print(f"nemodiff: warning: {'; '.join(problems)}", file=sys.stderr)
        with kernels_clash_explained():  # any command that reaches transformers
            return args.run(args)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except (NemodiffError, ValueError, OSError) as e:
        if args.debug:
            raise
        print(f"nemodiff: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
