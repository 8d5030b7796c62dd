"""`nemodiff random-checkpoint`: an NLD-format checkpoint with random weights, for tests and speed runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.model.config import PRESETS


def register(sub) -> None:
    p = sub.add_parser("random-checkpoint", help="write an NLD-format checkpoint with random weights")
    p.add_argument("dir", help="output directory")
    p.add_argument("--size", choices=tuple(PRESETS), default="tiny")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.errors import NemodiffError
    from engine.loading.random_checkpoint import write_random_checkpoint

    out = Path(args.dir)
    if not args.dir or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise NemodiffError(f"{args.dir!r} is not a new or empty directory: nothing written")

    with tqdm(desc=f"writing {args.size} checkpoint", unit="tensor") as bar:

        def progress(done: int, total: int, what: str) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(what, refresh=False)
            bar.refresh()

        write_random_checkpoint(args.dir, size=args.size, seed=args.seed, progress=progress)
    print(args.dir)
    return 0
