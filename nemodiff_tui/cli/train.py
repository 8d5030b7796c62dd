"""`nemodiff train-demo`: train (or resume) the bundled demo model with NLD's joint objective;
`nemodiff train-draft`: train a model's draft adapter for self-speculation."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from engine.training import cli, draft_lora

    p = sub.add_parser("train-demo", help="train or resume the demo model (joint AR + diffusion objective)")
    cli.add_arguments(p)
    p.set_defaults(run=lambda args: _run(cli.run, args))
    p = sub.add_parser(
        "train-draft", help="train a model's self-speculation draft adapter (linear_spec_lora/)"
    )
    draft_lora.add_arguments(p)
    p.set_defaults(run=lambda args: _run(draft_lora.run, args))


def _run(train, args: argparse.Namespace) -> int:
    train(args)
    return 0
