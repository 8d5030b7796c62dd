"""`nemodiff eval-fim`: exact match, edit similarity and speed on fill-in-the-middle holes."""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import RequestError
from engine.request import MODES
from engine.evaluation.fim_quality import BUILT_KINDS, KINDS
from nemodiff_tui.cli.common import (
    add_generation_args,
    add_model_args,
    generation_config,
    load_engine,
    positive,
)

EVAL_MODES = ("ar", "diffusion", "self-spec")


def register(sub) -> None:
    p = sub.add_parser("eval-fim", help="evaluate fill-in-the-middle on a JSONL file of holes")
    p.add_argument("data", nargs="?", help="JSONL with prefix, suffix, middle, kind (line|span|block)")
    p.add_argument(
        "--make-holdout", metavar="OUT", help="write holes from the held-out stdlib modules and exit"
    )
    p.add_argument("--per-kind", type=positive, default=200, help="holes per kind for --make-holdout")
    p.add_argument(
        "--kinds",
        nargs="+",
        choices=BUILT_KINDS,
        default=list(KINDS),
        metavar="KIND",
        help="kinds for --make-holdout: line span block edit (default: line span block; edit: line "
        "holes with a near-duplicate line earlier in the file)",
    )
    p.add_argument("--limit", type=positive, default=None, help="evaluate only the first N holes")
    p.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=None,
        metavar="MODE",
        help="modes to compare, taking turns on each hole (default: --mode, else ar diffusion self-spec)",
    )
    p.add_argument("--json", action="store_true")
    add_model_args(p)
    add_generation_args(p)
    p.set_defaults(run=run)


def valid_hole(hole: object) -> bool:
    return (
        isinstance(hole, dict)
        and all(isinstance(hole.get(k), str) for k in ("prefix", "suffix", "middle"))
        and hole.get("kind") in ("line", "span", "block")
    )


def read_holes(path: str, limit: int | None) -> list[dict]:
    holes = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    hole = json.loads(line)
                except ValueError:
                    hole = None
                if not valid_hole(hole):
                    raise RequestError(
                        f"{path}:{n}: not a hole (need prefix, suffix, middle, kind line|span|block)"
                    )
                holes.append(hole)
    except OSError as e:
        raise RequestError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise RequestError(f"{path} is not valid UTF-8") from None
    return holes[:limit] if limit is not None else holes


def run(args: argparse.Namespace) -> int:
    if args.make_holdout:
        from engine.evaluation.fim_quality import make_holdout

        holes = make_holdout(args.per_kind, seed=args.seed or 0, kinds=tuple(args.kinds))
        with open(args.make_holdout, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(h) + "\n" for h in holes)
        print(f"wrote {len(holes)} holes to {args.make_holdout}", file=sys.stderr)
        return 0
    if not args.data:
        raise RequestError("give a JSONL file of holes, or --make-holdout OUT.jsonl")
    from tqdm import tqdm

    from engine.evaluation.fim_quality import evaluate

    holes = read_holes(args.data, args.limit)
    if not holes:
        raise RequestError(f"{args.data}: no holes to evaluate")
    eng = load_engine(args)
    modes = args.modes or ([args.mode] if args.mode else list(EVAL_MODES))
    configs = [generation_config(args, mode).replace(mode=mode) for mode in modes]
    with tqdm(total=len(holes) * len(modes), desc="eval-fim", unit="fill", file=sys.stderr) as bar:
        results = evaluate(eng, holes, configs, lambda done, total: bar.update(1))
    if args.json:
        out = [s for s, _ in results]
        print(json.dumps(out[0] if len(out) == 1 else out))
        return 0
    print(f"{len(holes)} holes, model {eng.name}")
    for s, groups in results:
        detail = ", ".join(f"{k} {v:.1%}" for k, v in groups.items())
        speed = f" ({s['speedup_vs_ar']:.2f}x AR's speed)" if s.get("speedup_vs_ar") else ""
        if "ar_tokens_per_forward" in s:
            speed += f", AR's tokens over its forwards {s['ar_tokens_per_forward']:.2f}"
        copies = (
            f", copies accepted {s['copy_accepted']}/{s['copy_drafted']} ({s['copy_acceptance']:.1%})"
            if "copy_drafted" in s
            else ""
        )
        same = {True: ", equal to AR", False: ", DIFFERS from AR"}.get(s.get("matches_ar"), "")
        print(
            f"{s['mode']:>10}: exact match {s['exact_match']:.1%}, edit similarity {s['edit_similarity']:.3f}, "
            f"{s['tokens_per_forward']:.2f} tokens/forward, {s['tokens_per_second']:.1f} tokens/s{speed}"
            f"{copies}{same}  ({detail})"
        )
    return 0
