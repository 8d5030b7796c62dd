"""`nemodiff train-demo`: train (or resume) the bundled demo model with NLD's joint objective."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from engine.training.cli import add_arguments

    p = sub.add_parser("train-demo", help="train or resume the demo model (joint AR + diffusion objective)")
    add_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.training.cli import run as train

    train(args)
    return 0
