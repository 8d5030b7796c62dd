"""What `auto` runs on an NLD checkpoint: which self-speculation variant, and how many accepted
tokens per cycle it needs to outrun AR, both from passes timed on the loaded model at load.

A linear cycle is two passes of B tokens (draft, verify). A quadratic cycle is one pass of
B(B+1) tokens, but its pre-drafts cannot see the bonus token, so it accepts fewer tokens per
cycle (QUADRATIC_YIELD of linear's). On a CPU every token of a pass costs, so linear is chosen
without timing quadratic; on a GPU a pass of B(B+1) tokens can cost about what one of B does
(launch-bound eager passes, small blocks) or several times more, so both are timed.
Self-speculation emits its accepted tokens once per cycle, AR one token per step: it is the
faster only while accepted tokens per cycle exceed cycle time over step time (the break-even).

One prompt's cycles are too few to judge by, so the engine pools its recent `auto` cycles and,
once the pool holds MIN_EVIDENCE of them, starts generations in AR while the pool falls short of
the break-even, running every PROBE_EVERY-th such generation as self-spec to notice a change.
The measurements behind these rules, and the rules tried first: docs/BENCHMARKS.md (`auto`).

Copy drafts (engine/decoding/copy_draft.py) change both sides of that sum: a linear cycle whose
copy stands in for the draft runs no draft pass, so it costs a verify pass alone (`verify_share`
of a full cycle). The pool therefore weighs each cycle by its cost: on text that repeats itself,
cheap cycles that accept whole blocks keep self-spec on where model drafts alone fall short.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from engine.decoding.modes.self_spec import quadratic_pass
from engine.decoding.runner import NativeRunner
from kernels.ops import Pattern

QUADRATIC_YIELD = 0.7  # quadratic's accepted tokens per cycle over linear's (1.91 / 2.71, measured)
ROUNDS = 5
TIMING_BUDGET_S = 10.0  # past this, one timed round is enough: NLD-3B on a CPU spends seconds per pass
WINDOW = 256  # recent cycles pooled: about ten generations of 64 tokens at the demo model's acceptance
MIN_EVIDENCE = 64  # cycles pooled before the pool is trusted: one prompt's acceptance varies too much
PROBE_EVERY = 8
GIVE_UP_AFTER = 4  # cycles after which a self-spec generation judges its own acceptance
GIVE_UP_BELOW = 0.25  # mean accepted drafts per cycle below which it continues in AR


@dataclass
class AutoPolicy:
    variant: str  # "linear" or "quadratic"
    break_even: float  # accepted tokens per cycle the variant needs to outrun AR on this device
    verify_share: float = 1.0  # cost of a cycle without its draft pass (a copy drafted) over a full one
    recent: deque = field(default_factory=lambda: deque(maxlen=WINDOW), repr=False, compare=False)
    skipped: int = field(default=0, repr=False, compare=False)  # generations started in AR in a row
    # A generation records from its own thread while a UI thread may ask what the next one runs.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, accepted: int, draft_pass: bool = True) -> None:
        """One self-spec cycle's accepted tokens (bonus included), and whether it ran a draft pass."""
        with self._lock:
            self.recent.append((accepted, 1.0 if draft_pass else self.verify_share))

    @property
    def falling_short(self) -> bool:
        """Do the pooled recent cycles accept fewer tokens than AR emits in the same time?"""
        with self._lock:
            n = len(self.recent)
            total, cost = sum(a for a, _ in self.recent), sum(c for _, c in self.recent)
        return n >= MIN_EVIDENCE and total / cost < self.break_even

    def mode(self) -> str:
        """What the next `auto` generation runs: the variant, or AR while drafts fall short (but
        every PROBE_EVERY-th such generation drafts, to refresh the pool)."""
        short = self.falling_short
        with self._lock:
            skipped = self.skipped
        if short and (skipped + 1) % PROBE_EVERY:
            return "ar"
        return f"self-spec-{self.variant}"

    def gives_up(self, cycle: int, accepted: Counter[int]) -> bool:
        """Does a self-spec generation switch to AR now? Once, after GIVE_UP_AFTER cycles, if its
        drafts (`accepted`: cycles by tokens accepted, bonus included) were almost never accepted."""
        if cycle != GIVE_UP_AFTER:
            return False
        drafts = sum((k - 1) * v for k, v in accepted.items())
        return drafts / max(sum(accepted.values()), 1) < GIVE_UP_BELOW

    def started(self, mode: str) -> None:
        with self._lock:
            self.skipped = self.skipped + 1 if mode == "ar" else 0


def choose(
    ar_s: float, linear_s: float, quadratic_s: float | None = None, verify_s: float | None = None
) -> AutoPolicy:
    """The variant with more accepted tokens per second, given seconds per AR step and per cycle
    (and per verify pass: what a linear cycle costs when a copy stands in for its draft)."""
    if quadratic_s is not None and quadratic_s < QUADRATIC_YIELD * linear_s:
        return AutoPolicy("quadratic", quadratic_s / ar_s)
    return AutoPolicy("linear", linear_s / ar_s, 1.0 if verify_s is None else verify_s / linear_s)


def _best_seconds(runner: NativeRunner, passes: dict[str, Callable[[], None]]) -> dict[str, float]:
    """Best time of each pass over ROUNDS rounds that run them all in turn, after an untimed round
    (allocations, kernel compiles): interleaved, so a warming or busy machine slows them alike (one
    after the other, the first pass would be timed cold). Rounds stop once timing has taken
    TIMING_BUDGET_S: five rounds of a 3B model's int8 passes on a loaded 2-core CPU took minutes
    of every load."""
    cuda = runner.device.type == "cuda"
    best = dict.fromkeys(passes, float("inf"))
    began = time.perf_counter()
    for i in range(ROUNDS + 1):
        if i > 1 and time.perf_counter() - began > TIMING_BUDGET_S:
            break
        for name, run in passes.items():
            if cuda:
                torch.cuda.synchronize(runner.device)
            start = time.perf_counter()
            run()
            if cuda:
                torch.cuda.synchronize(runner.device)
            if i:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def time_passes(runner: NativeRunner, block: int, mask_id: int, quadratic: bool) -> dict[str, float]:
    """Seconds per AR step, linear cycle and (if asked) quadratic cycle at `block` on the runner's
    device: the passes and the logits each takes from them. Passes only stage their K/V, so the
    cache is left as it was."""
    tokens = [mask_id] * block  # what the tokens are does not change what a pass costs

    def ar():
        runner.logits(runner.forward(tokens[:1], Pattern.CAUSAL))

    def draft():
        runner.logits(runner.forward(tokens, Pattern.BIDIRECTIONAL, lora=True)[1:])

    def verify():
        runner.logits(runner.forward(tokens, Pattern.CAUSAL))

    def quadratic_cycle():  # the row heads' logits, then one row's pre-draft
        hidden, heads = quadratic_pass(runner, tokens, mask_id)
        runner.logits(hidden[heads])
        runner.logits(hidden[1 : block + 1])

    passes = {"ar": ar, "draft": draft, "verify": verify} | (
        {"quadratic": quadratic_cycle} if quadratic else {}
    )
    best = _best_seconds(runner, passes)
    costs = {"ar_s": best["ar"], "linear_s": best["draft"] + best["verify"], "verify_s": best["verify"]}
    if quadratic:
        costs["quadratic_s"] = best["quadratic"]
    return costs


def auto_policy(runner: NativeRunner, block: int, mask_id: int) -> AutoPolicy:
    return choose(**time_passes(runner, block, mask_id, quadratic=runner.device.type == "cuda"))
