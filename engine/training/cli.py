"""`nemodiff train-demo` / `python -m engine.training`: train or resume the bundled demo model."""

from __future__ import annotations

import argparse
import dataclasses

import torch

from engine.training.trainer import Settings, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="run directory (checkpoint/, export/, training_log.jsonl)")
    parser.add_argument("--resume", action="store_true", help="continue exactly from the run's checkpoint")
    parser.add_argument("--minutes", type=float, help="wall-clock budget of this invocation (default: no limit)")
    parser.add_argument("--steps", type=int, help="stop at this total step count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0,
                        help="minutes between checkpoints (each also refreshes export/)")
    parser.add_argument("--init-from", metavar="DIR",
                        help="start from an exported model (e.g. engine/demo_model): weights, tokenizer, step count")
    parser.add_argument("--cooldown-steps", type=int, metavar="N",
                        help="anneal the learning rate linearly to zero over N steps, then stop (finishes a model)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help=f"sequences per step of a new run (default {Settings.batch_size}; a GPU wants ~128)")
    parser.add_argument("--lr", type=float, help=f"peak learning rate of a new run (default {Settings.lr})")


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in (("batch_size", args.batch_size), ("lr", args.lr)) if v is not None}
    if overrides and args.resume:
        raise SystemExit("error: --batch-size and --lr set up a new run; a resumed run keeps its checkpoint's")
    try:
        export = train(args.out, minutes=args.minutes, resume=args.resume, seed=args.seed, max_steps=args.steps,
                       checkpoint_minutes=args.checkpoint_minutes, init_from=args.init_from,
                       cooldown_steps=args.cooldown_steps,
                       settings=dataclasses.replace(Settings(), **overrides) if overrides else None)
    except (FileExistsError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"exported to {export}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.training", description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))
