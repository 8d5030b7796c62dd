"""Which self-speculation variant `auto` runs: linear on a CPU; on a GPU, whichever is timed faster.

A linear cycle is two passes of B tokens (draft, verify). A quadratic cycle is one pass of
B(B+1) tokens, but its pre-drafts cannot see the bonus token, so it accepts fewer tokens per
cycle: 1.91 against linear's 2.71 for the demo model (docs/BENCHMARKS.md). On a CPU every token
costs (the demo model's quadratic pass is 2.6x an AR step at B = 8, 21x at B = 32), so linear is
chosen without timing. On a GPU a pass of B(B+1) tokens can cost about what one of B tokens
does (eager passes are launch-bound; small blocks leave compute to spare) or several times more
(3B shapes at B = 32 on an H200 under CUDA graphs: 13.6 ms against 2.8), so the engine times
both cycles on the loaded model once, at its block size.
"""

from __future__ import annotations

import time

import torch

from engine.modes.self_spec import quadratic_pass
from engine.runner import NativeRunner
from kernels.ops import Pattern

QUADRATIC_YIELD = 0.7  # quadratic's accepted tokens per cycle over linear's (1.91 / 2.71, measured)
REPEATS = 3


def choose(linear_cycle_s: float, quadratic_cycle_s: float) -> str:
    """The variant with more accepted tokens per second, given each cycle's cost."""
    return "quadratic" if quadratic_cycle_s < QUADRATIC_YIELD * linear_cycle_s else "linear"


def _seconds(runner: NativeRunner, run) -> float:
    """Best of a few timings after one untimed call (allocations, kernel compiles)."""
    cuda = runner.device.type == "cuda"
    best = float("inf")
    for i in range(REPEATS + 1):
        if cuda:
            torch.cuda.synchronize(runner.device)
        start = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize(runner.device)
        if i:
            best = min(best, time.perf_counter() - start)
    return best


def time_cycles(runner: NativeRunner, block: int, mask_id: int) -> tuple[float, float]:
    """Seconds per (linear, quadratic) cycle at `block` on the runner's device: the passes and
    the logits each variant takes from them. The passes only stage their K/V, so the cache is
    left as it was."""
    tokens = [mask_id] * block  # what the tokens are does not change what a pass costs

    def draft():
        runner.logits(runner.forward(tokens, Pattern.BIDIRECTIONAL, lora=True)[1:])

    def verify():
        runner.logits(runner.forward(tokens, Pattern.CAUSAL))

    def quadratic():  # the row heads' logits, then one row's pre-draft
        hidden, heads = quadratic_pass(runner, tokens, mask_id)
        runner.logits(hidden[heads])
        runner.logits(hidden[1: block + 1])

    return _seconds(runner, draft) + _seconds(runner, verify), _seconds(runner, quadratic)


def auto_variant(runner: NativeRunner, block: int, mask_id: int) -> str:
    if runner.device.type != "cuda":
        return "linear"
    return choose(*time_cycles(runner, block, mask_id))
