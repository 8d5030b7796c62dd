"""Seconds per forward pass at the widths the modes run: 1 (an AR step), B (a draft, a verify, a
diffusion step), B(B+1) (a quadratic self-spec cycle) and a prompt chunk, after a cached context;
with the load's time and peak memory. On a CPU with a large model a pass's cost is mostly reading
the weights, so the ratios to a one-token pass say which modes can pay (docs/BENCHMARKS.md).

    python -m engine.evaluation.pass_costs CHECKPOINT --dtype int8 [--widths 1 8 16 32 72 256]
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import dataclass

import torch

from engine.decoding.runner import NativeRunner
from engine.loading.checkpoint import load_model
from kernels.ops import Pattern

WIDTHS = (1, 8, 16, 32, 72, 256)


@dataclass
class Profile:
    dtype: str
    load_s: float
    first_pass_s: float  # a load maps the weights lazily: the first pass reads them
    peak_rss_gb: float  # of this process so far
    pass_s: dict[int, float]

    def table(self) -> str:
        rows = [f"{self.dtype}: load {self.load_s:.1f} s, first pass {self.first_pass_s:.1f} s, "
                f"peak RSS {self.peak_rss_gb:.2f} GB", "| width | ms | x 1-token pass |", "|---|---|---|"]
        one = self.pass_s.get(1)
        for width, s in self.pass_s.items():
            rows.append(f"| {width} | {s * 1e3:.0f} | {s / one:.2f} |" if one else f"| {width} | {s * 1e3:.0f} | |")
        return "\n".join(rows)


def pass_seconds(runner: NativeRunner, widths: list[int], token: int, context: int = 120, rounds: int = 3) -> dict[int, float]:
    """Best seconds of a causal pass of each width after `context` cached tokens, over `rounds`
    interleaved rounds after an untimed one. Passes only stage their K/V: the cache is left empty."""
    runner.reserve(context, max(widths))
    runner.crop(0)
    runner.extend([token] * context)
    best = dict.fromkeys(widths, float("inf"))
    for i in range(rounds + 1):
        for width in widths:
            start = time.perf_counter()
            runner.forward([token] * width, Pattern.CAUSAL)
            if runner.device.type == "cuda":
                torch.cuda.synchronize(runner.device)
            if i:
                best[width] = min(best[width], time.perf_counter() - start)
    runner.crop(0)
    return best


def profile(model: str, dtype: str, widths: list[int], device: str = "auto", rounds: int = 3) -> Profile:
    """Load `model` (an NLD checkpoint) in this process and time its passes."""
    start = time.perf_counter()
    loaded = load_model(model, device=device, dtype=dtype)
    if not loaded.int8:
        loaded.model.fuse_projections()  # as the Engine does; int8 loads fused
    load_s = time.perf_counter() - start
    runner = NativeRunner(loaded.model, capacity=1024)
    runner.forward([loaded.config.bos_token_id], Pattern.CAUSAL)
    first_s = time.perf_counter() - start - load_s
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return Profile(dtype, load_s, first_s, rss, pass_seconds(runner, widths, loaded.config.bos_token_id, rounds=rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--dtype", default=None, help="bf16, fp32, int8, ... (default: the loader's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(profile(args.model, args.dtype, args.widths, args.device, args.rounds).table())


if __name__ == "__main__":
    main()
