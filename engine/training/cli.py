"""`nemodiff train-demo` / `python -m engine.training`: train or resume the bundled demo model."""

from __future__ import annotations

import argparse
import dataclasses

import torch

from engine.errors import NemodiffError
from engine.training.settings import Settings
from engine.training.trainer import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, help="run directory (checkpoint/, export/, training_log.jsonl)"
    )
    parser.add_argument("--resume", action="store_true", help="continue exactly from the run's checkpoint")
    parser.add_argument(
        "--minutes", type=float, help="wall-clock budget of this invocation (default: no limit)"
    )
    parser.add_argument("--steps", type=int, help="stop at this total step count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=10.0,
        help="minutes between checkpoints (each also refreshes export/)",
    )
    parser.add_argument(
        "--init-from",
        metavar="DIR",
        help="start from an exported model (e.g. engine/demo_model): weights, tokenizer, step count",
    )
    parser.add_argument(
        "--cooldown-steps",
        type=int,
        metavar="N",
        help="anneal the learning rate linearly to zero over N steps, then stop (finishes a model)",
    )
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a setting of a new run (repeatable): any field of engine.training.settings."
        "Settings, e.g. batch_size=128 lr=8e-3 (a GPU) or num_hidden_layers=10; blocks=8,16,32",
    )
    parser.add_argument(
        "--stdlib",
        metavar="DIR",
        help="read the corpus from this standard library instead of the running interpreter's "
        "(one with its test/ package; some distributions ship it separately)",
    )


def settings_from(pairs: list[str]) -> Settings:
    """Settings with `FIELD=VALUE` changes, each cast to the field's type; NemodiffError on a bad pair."""
    base = Settings()
    names = [f.name for f in dataclasses.fields(Settings)]
    changes = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in names:
            raise NemodiffError(f"--set {pair}: expected FIELD=VALUE, FIELD one of {', '.join(names)}")
        default = getattr(base, name)
        try:
            changes[name] = (
                tuple(map(int, value.split(","))) if isinstance(default, tuple) else type(default)(value)
            )
        except ValueError:
            raise NemodiffError(f"--set {pair}: {value!r} is not a {type(default).__name__}") from None
    return dataclasses.replace(base, **changes)


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.set and args.resume:
        raise NemodiffError("--set shapes a new run; a resumed run keeps its checkpoint's settings")
    try:
        export = train(
            args.out,
            minutes=args.minutes,
            resume=args.resume,
            seed=args.seed,
            max_steps=args.steps,
            checkpoint_minutes=args.checkpoint_minutes,
            init_from=args.init_from,
            cooldown_steps=args.cooldown_steps,
            stdlib=args.stdlib,
            settings=settings_from(args.set) if args.set else None,
        )
    except (FileExistsError, FileNotFoundError) as e:
        raise NemodiffError(str(e)) from None
    print(f"exported to {export}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.training", description=__doc__)
    add_arguments(parser)
    try:
        run(parser.parse_args(argv))
    except NemodiffError as e:
        raise SystemExit(f"error: {e}") from None
