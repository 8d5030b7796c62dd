"""`nemodiff bench`: the speed of every mode against transformers' `generate()`, in one run."""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.errors import NemodiffError
from engine.evaluation.pass_profile import table as profile_table
from nemodiff_tui.cli.common import add_model_args, load_engine, positive

COLUMNS = (
    "tokens_per_second",
    "tokens_per_forward",
    "nfe",
    "n_tokens",
    "mean_accepted_length",
    "speedup_vs_ar",
)


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmark every decoding mode against transformers generate()")
    add_model_args(p)
    p.add_argument("--max-new-tokens", type=positive, default=64)
    p.add_argument("--repeats", type=positive, default=1)
    p.add_argument(
        "--modes",
        nargs="+",
        default=None,
        type=bench_mode,
        metavar="MODE",
        help="subset of: ar diffusion self-spec-linear self-spec-quadratic auto (default: all but auto; "
        "ar always runs: it is the baseline)",
    )
    p.add_argument(
        "--block-size",
        type=positive,
        default=None,
        help="tokens per block for the modes and the profile's passes (default: the checkpoint's)",
    )
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("--plot", metavar="PNG", help="also save a bar chart (needs matplotlib)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="only time each pass width (1, B, B(B+1), a prompt chunk) against its weight matmuls",
    )
    p.add_argument(
        "--kernels-bench",
        dest="kernel_bench",
        action="store_true",
        help="run the GPU kernel and forward benchmark (python -m engine.evaluation.gpu_bench) instead",
    )
    p.set_defaults(run=run)


def bench_mode(name: str) -> str:
    """An argparse type: one of the benchmark's modes (looked up only when `bench` runs: the benchmark
    module loads torch, which every other command, and the editor, would wait for)."""
    from engine.evaluation.mode_bench import MODES

    if name not in MODES:
        raise argparse.ArgumentTypeError(f"invalid choice: {name!r} (choose from {', '.join(MODES)})")
    return name


def table(report: dict) -> str:
    lines = [
        f"model {report['model']} ({report['dtype']}) on {report['device']}, {report['prompts']} prompts x "
        f"{report['max_new_tokens']} new tokens",
        "",
        "| mode | " + " | ".join(COLUMNS) + " | lossless |",
        "|---" * (len(COLUMNS) + 2) + "|",
    ]
    for mode, r in report["results"].items():
        cells = []
        for c in COLUMNS:
            v = r.get(c)
            cells.append("-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v))
        if mode == "hf-generate":  # the same question of transformers: does it write what our AR writes?
            lossless, ties = report["hf_matches_ar"], report["hf_parted_at_ties"]
        else:
            lossless, ties = report["lossless"].get(mode), report.get("parted_at_ties", {}).get(mode)
        mark = (
            "-"
            if lossless is None
            else f"{lossless} ({ties} parted at rounding ties)"
            if ties
            else str(lossless)
        )
        lines.append(f"| {mode} | " + " | ".join(cells) + f" | {mark} |")
    lines.append("")
    for mode, r in report["results"].items():
        if "accepted_histogram" in r:
            counts = ", ".join(f"{k}: {v}" for k, v in r["accepted_histogram"].items())
            lines.append(f"{mode}: cycles by tokens accepted (bonus included): {counts}")
        if "copy_drafted" in r:
            lines.append(
                f"{mode}: copied drafts accepted: {r['copy_accepted']} of {r['copy_drafted']} "
                f"({r['copy_acceptance']:.1%})"
            )
        if "confidence_histogram" in r:
            counts = ", ".join(f"{k / 10:.1f}+: {v}" for k, v in enumerate(r["confidence_histogram"]))
            lines.append(f"{mode}: masked slots by confidence at each denoising pass: {counts}")
    if report.get("profile"):
        lines += ["", profile_table(report["profile"])]
    return "\n".join(lines).rstrip()


def run(args: argparse.Namespace) -> int:
    if args.kernel_bench:
        from engine.evaluation.gpu_bench import main as gpu_bench

        return gpu_bench([])
    from tqdm import tqdm

    from engine.evaluation.mode_bench import run_bench

    if args.plot:
        pyplot()
    if args.block_size is not None:  # the one-line error of a request, before the model loads
        from engine.request import GenerationConfig

        GenerationConfig(block_size=args.block_size).validate()
    started = time.perf_counter()
    eng = load_engine(args)
    if args.profile:
        from engine.evaluation.mode_bench import device_name
        from engine.evaluation.pass_profile import peak_rss_gb, profile_engine
        from engine.model.quantize import int8_path

        load_s, rss = time.perf_counter() - started, peak_rss_gb()  # before the passes allocate their own
        matmuls = int8_path(eng.model)  # which int8 GEMM, if any
        report = {
            "device": device_name(eng.device),
            "model": eng.name,
            "dtype": eng.dtype,
            "int8_matmuls": matmuls or None,
            "load_s": load_s,
            "peak_rss_gb": rss,
            "profile": profile_engine(eng, block=args.block_size),
        }
        memory = f", peak RSS {rss:.2f} GB" if rss is not None else ""
        print(
            json.dumps(report)
            if args.json
            else f"model {eng.name} ({eng.dtype}{f', {matmuls} matmuls' if matmuls else ''}) on {report['device']}: "
            f"loaded in {load_s:.1f} s{memory}\n\n" + profile_table(report["profile"])
        )
        return 0
    with tqdm(desc="bench", unit="run", file=sys.stderr) as bar:

        def progress(done: int, total: int, what: str) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(what, refresh=False)
            bar.refresh()

        report = run_bench(
            eng, args.max_new_tokens, args.modes, args.repeats, progress, block_size=args.block_size
        )
    print(json.dumps(report) if args.json else table(report))
    if args.plot:
        save_plot(report, args.plot)
    return 0


def pyplot():
    """matplotlib's pyplot, or a one-line error (checked before the benchmark, not after it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise NemodiffError("--plot needs matplotlib: pip install matplotlib") from None
    return plt


def save_plot(report: dict, path: str) -> None:
    plt = pyplot()
    modes = list(report["results"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("tokens_per_second", "tokens_per_forward")):
        ax.bar(modes, [report["results"][m].get(key) or 0 for m in modes])
        ax.set_title(key.replace("_", " "))
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{report['model']} on {report['device']}")
    fig.tight_layout()
    fig.savefig(path)
