"""Seconds per forward pass at the widths the modes run: 1 (an AR step), B (a draft, a verify, a
diffusion step), B(B+1) (a quadratic self-spec cycle) and a prompt chunk, after a cached context.
On a CPU with a large model a pass's cost is mostly reading the weights, so these ratios say which
modes can pay (docs/BENCHMARKS.md); `auto` and the benchmarks read them."""

from __future__ import annotations

import time

import torch

from engine.decoding.runner import NativeRunner
from kernels.ops import Pattern


def pass_widths(block: int, prompt_chunk: int = 256) -> list[int]:
    return sorted({1, 8, 16, block, block * (block + 1) if block <= 8 else 8 * 9, prompt_chunk})


def pass_seconds(runner: NativeRunner, widths: list[int], token: int, context: int = 120, rounds: int = 3) -> dict[int, float]:
    """Best seconds of a causal pass of each width after `context` cached tokens, over `rounds`
    interleaved rounds after an untimed one. Passes only stage their K/V: the cache is left as it was."""
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
