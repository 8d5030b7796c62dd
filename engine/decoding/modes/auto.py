"""What `auto` runs on an NLD checkpoint: AR, linear or quadratic self-speculation, or (only when
the request opts in, as it is not lossless) diffusion, whichever emits the most tokens per second,
from the passes timed on the loaded model at load and the tokens per cycle or pass the engine has
seen each mode yield.

Seconds per pass of each width the modes run, timed once at load (`time_passes`; a large model's
are kept in the user's cache for its next load: engine/decoding/modes/saved_costs.py): an AR step
(1 token), a draft pass (B tokens, bidirectional, adapter on), a verify pass (B tokens, causal)
and, on a GPU, a quadratic pass (B(B+1) tokens). On a CPU every token of a pass costs and a
quadratic pass at the checkpoint's B = 32 holds 1056 tokens, so its cost is extrapolated from the
other two widths (straight line through the 1- and B-token passes) instead of timed, unless that
estimate is below QUADRATIC_TIMED_BELOW_S: a small model's passes cost dispatch more than
arithmetic, the line through two nearly equal timings is nearly flat, and timing noise alone then
made a quadratic pass look as cheap as an AR step. Then, per second:
- AR: 1 token per step;
- linear self-spec: accepted tokens per cycle (bonus included) over a draft plus a verify pass;
- quadratic: QUADRATIC_YIELD of linear's accepted tokens (its pre-drafts cannot see the bonus
  token) over one quadratic pass;
- diffusion: tokens per forward (committed tokens over passes, each block's causal commit pass
  included) over a B-token pass.
The self-spec variant is the one with more tokens per second. Self-speculation is faster than AR
only while its accepted tokens per cycle exceed cycle time over step time (the break-even).

Acceptance: one prompt's cycles are too few to judge by, so the engine pools its recent `auto`
cycles and, once the pool holds MIN_EVIDENCE of them, starts generations in AR while the pool falls
short of the break-even, running every PROBE_EVERY-th such generation as self-spec to notice a
change. Diffusion's tokens per forward are pooled likewise from the diffusion generations `auto`
ran; until there are MIN_EVIDENCE passes, NLD's reported figures stand in (LINEAR_PRIOR,
DIFFUSION_PRIOR). The measurements behind these rules, and the rules tried first:
docs/BENCHMARKS.md (`auto`).

Copy drafts (engine/decoding/copy_draft.py) change both sides of that sum: a linear cycle whose
copy stands in for the draft runs no draft pass, so it costs a verify pass alone (`verify_share`
of a full cycle). The pool therefore weighs each cycle by its cost: on text that repeats itself,
cheap cycles that accept whole blocks keep self-spec on where model drafts alone fall short.

Diffusion's tokens are not AR's (a block commits several tokens per pass from bidirectional
guesses), so `auto` never picks it unless `GenerationConfig.auto_diffusion` is set: by default
`auto` is as lossless as AR at temperature 0.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from engine.decoding.modes import saved_costs
from engine.decoding.modes.self_spec import quadratic_pass
from engine.decoding.runner import NativeRunner
from engine.model.quantize import int8_path
from kernels.ops import Pattern

QUADRATIC_YIELD = 0.7  # quadratic's accepted tokens per cycle over linear's (1.91 / 2.71, measured)
LINEAR_PRIOR = 6.0  # accepted tokens per linear cycle NLD's card reports at B = 32 (until pooled)
DIFFUSION_PRIOR = 2.6  # tokens per forward NLD's card reports for diffusion (commit passes included)
ROUNDS = 5
TIMING_BUDGET_S = 10.0  # past this, one timed round is enough: NLD-3B on a CPU spends seconds per pass
QUADRATIC_TIMED_BELOW_S = 0.05  # a CPU times the quadratic pass where its estimate is below this
WINDOW = 256  # recent cycles pooled: about ten generations of 64 tokens at the demo model's acceptance
MIN_EVIDENCE = 64  # cycles (diffusion: passes) pooled before the pool is trusted: one prompt varies too much
PROBE_EVERY = 8
GIVE_UP_AFTER = 4  # cycles after which a self-spec generation judges its own acceptance
GIVE_UP_BELOW = 0.25  # mean accepted drafts per cycle below which it continues in AR


@dataclass(frozen=True)
class PassCosts:
    """Seconds per pass of each width the modes run at block size B (see the module docstring)."""

    ar_s: float  # 1 token
    draft_s: float  # B tokens, bidirectional, adapter on
    verify_s: float  # B tokens, causal (also what a diffusion pass costs: B tokens, no adapter)
    quadratic_s: float  # B(B+1) tokens


@dataclass
class AutoPolicy:
    variant: str  # "linear" or "quadratic"
    break_even: float  # accepted tokens per cycle the variant needs to outrun AR on this device
    verify_share: float = 1.0  # cost of a cycle without its draft pass (a copy drafted) over a full one
    costs: PassCosts | None = None  # what diffusion is weighed with (None: auto never picks it)
    recent: deque = field(default_factory=lambda: deque(maxlen=WINDOW), repr=False, compare=False)
    diffusion: deque = field(default_factory=lambda: deque(maxlen=WINDOW), repr=False, compare=False)
    skipped: int = field(default=0, repr=False, compare=False)  # generations started in AR in a row
    # A generation records from its own thread while a UI thread may ask what the next one runs.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, accepted: int, draft_pass: bool = True) -> None:
        """One self-spec cycle's accepted tokens (bonus included), and whether it ran a draft pass."""
        with self._lock:
            self.recent.append((accepted, 1.0 if draft_pass else self.verify_share))

    def record_diffusion(self, tokens: int, passes: int) -> None:
        """One diffusion generation's tokens and forward passes (after its prompt's)."""
        with self._lock:
            self.diffusion.append((tokens, passes))

    def _accepted(self) -> float | None:
        """Pooled accepted tokens per full cycle's cost, or None while evidence is short."""
        with self._lock:
            n = len(self.recent)
            total, cost = sum(a for a, _ in self.recent), sum(c for _, c in self.recent)
        return total / cost if n >= MIN_EVIDENCE else None

    def _per_forward(self) -> float:
        with self._lock:
            tokens, passes = sum(t for t, _ in self.diffusion), sum(p for _, p in self.diffusion)
        return tokens / passes if passes >= MIN_EVIDENCE else DIFFUSION_PRIOR

    def _lossless_rate(self) -> float:
        """Tokens per second of the faster of AR and the self-spec variant (at its pooled acceptance,
        or NLD's reported one while the pool is short)."""
        accepted = self._accepted()
        if accepted is None:
            accepted = LINEAR_PRIOR * (QUADRATIC_YIELD if self.variant == "quadratic" else 1.0)
        ar_s = self.costs.ar_s
        return max(1 / ar_s, accepted / (self.break_even * ar_s))  # break_even * ar_s: a cycle's seconds

    def _diffusion_rate(self) -> float:
        """Tokens per second of diffusion: tokens per forward over a B-token pass."""
        return self._per_forward() / self.costs.verify_s

    @property
    def falling_short(self) -> bool:
        """Do the pooled recent cycles accept fewer tokens than AR emits in the same time?"""
        accepted = self._accepted()
        return accepted is not None and accepted < self.break_even

    def mode(self, diffusion: bool = False) -> str:
        """What the next `auto` generation runs: the variant, or AR while drafts fall short (but
        every PROBE_EVERY-th such generation drafts, to refresh the pool); with `diffusion`
        (the request allows a lossy mode), diffusion where it emits more tokens per second than both."""
        short = self.falling_short
        with self._lock:
            skipped = self.skipped
        lossless = "ar" if short and (skipped + 1) % PROBE_EVERY else f"self-spec-{self.variant}"
        if diffusion and self.costs is not None and self._diffusion_rate() > self._lossless_rate():
            return "diffusion"
        return lossless

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


def choose(costs: PassCosts) -> AutoPolicy:
    """The self-spec variant with more accepted tokens per second at any acceptance (quadratic
    accepts QUADRATIC_YIELD of linear's per cycle), its break-even against AR, and (linear) what a
    cycle costs when a copy stands in for its draft."""
    linear_s = costs.draft_s + costs.verify_s
    if costs.quadratic_s < QUADRATIC_YIELD * linear_s:
        return AutoPolicy("quadratic", costs.quadratic_s / costs.ar_s, costs=costs)
    return AutoPolicy("linear", linear_s / costs.ar_s, costs.verify_s / linear_s, costs=costs)


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


def time_passes(runner: NativeRunner, block: int, mask_id: int, quadratic: bool) -> PassCosts:
    """Seconds per pass of each width at `block` on the runner's device: the passes and the logits
    each takes from them; the quadratic pass timed if asked or if its estimate (straight line through
    the 1- and B-token passes) is cheap, else that estimate. Passes only stage their K/V, so the
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
    per_token = max(best["verify"] - best["ar"], 0.0) / max(block - 1, 1)
    estimate = best["ar"] + per_token * (block * (block + 1) - 1)
    if "quadratic" not in best and estimate < QUADRATIC_TIMED_BELOW_S:
        best |= _best_seconds(runner, {"quadratic": quadratic_cycle})
    return PassCosts(
        ar_s=best["ar"],
        draft_s=best["draft"],
        verify_s=best["verify"],
        quadratic_s=best.get("quadratic", estimate),
    )


def auto_policy(
    runner: NativeRunner, block: int, mask_id: int, weight_files: list[Path] | None = None, dtype: str = ""
) -> AutoPolicy:
    """The policy from the passes' costs: those kept for this checkpoint (`weight_files`), `dtype`
    and machine (engine/decoding/modes/saved_costs.py), else timed now (and kept if worth it)."""
    quadratic = runner.device.type == "cuda"
    if weight_files is None:
        return choose(time_passes(runner, block, mask_id, quadratic))
    file, key = saved_costs.costs_file(
        weight_files, dtype, int8_path(runner.model), runner.device, block, quadratic
    )
    kept = saved_costs.read(file, key, tuple(f.name for f in fields(PassCosts)))
    if kept is not None:
        # One AR step, so that the first pass's allocations and first touch of the weights happen
        # here and not in the first completion (timing did that before).
        runner.logits(runner.forward([mask_id], Pattern.CAUSAL))
        return choose(PassCosts(**kept))
    wall, cpu = time.perf_counter(), time.process_time()
    costs = time_passes(runner, block, mask_id, quadratic)
    if saved_costs.worth_keeping(time.perf_counter() - wall, time.process_time() - cpu, runner.device):
        saved_costs.write(file, key, asdict(costs))
    return choose(costs)
