"""`nemodiff bench`: every decoding mode and transformers' `generate()` on the same weights,
side by side in one run, over a fixed set of code prompts shipped with the package.

Modes run round-robin per prompt so machine noise hits them alike; tokens per forward counts
generated tokens over forward passes (prompt excluded); speed-ups are ratios against our AR.
Where a mode's figure is held back by the model, the report shows why: self-spec's histogram of
accepted lengths per cycle (and, apart, how many of its drafts were copies of the prompt and how
many of those were accepted), and diffusion's histogram of the confidence every still-masked slot
had at each denoising pass (what the commit threshold is compared against). A self-spec variant
is lossless when every output equals AR's or parts from it only at a rounding tie
(engine/evaluation/lossless.py); `parted_at_ties` counts the latter, which bf16 produces now and then.
`hf_matches_ar` applies the same rule to transformers' outputs (`hf_parted_at_ties`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources

import torch

from engine.decoding.engine import Engine
from engine.evaluation.lossless import parted_at_tie
from engine.evaluation.pass_profile import profile_engine
from engine.events import Done, Step
from engine.request import GenerationConfig, Request

MODES = {
    "ar": dict(mode="ar"),
    "diffusion": dict(mode="diffusion"),
    "self-spec-linear": dict(mode="self-spec", speculation="linear"),
    "self-spec-quadratic": dict(mode="self-spec", speculation="quadratic"),
    "auto": dict(mode="auto"),  # on request only: self-spec while it outruns AR, else AR
}
DEFAULT_MODES = [m for m in MODES if m != "auto"]
LOSSLESS_MODES = ("self-spec-linear", "self-spec-quadratic", "auto")
CONFIDENCE_BINS = 10


def prompts() -> list[Request]:
    items = json.loads(resources.files("engine.evaluation").joinpath("bench_prompts.json").read_text())
    return [Request(**item) for item in items]


@dataclass
class Tally:
    seconds: float = 0.0
    n_tokens: int = 0
    nfe: int = 0
    prefill_passes: int = 0
    accepted: Counter = field(default_factory=Counter)
    copy_drafted: int = 0
    copy_accepted: int = 0
    confidence: list[int] = field(default_factory=lambda: [0] * CONFIDENCE_BINS)
    outputs: list[list[int]] = field(default_factory=list)

    def add_step(self, step: Step) -> None:
        """Count the confidence of each slot that was masked when this denoising pass ran."""
        if step.kind != "denoise":
            return
        for c, at in zip(step.confidence, step.commit_step):
            if at in (-1, step.step):
                self.confidence[min(int(c * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)] += 1

    def result(self) -> dict:
        cycles = sum(self.accepted.values())
        out = {
            "tokens_per_second": self.n_tokens / self.seconds if self.seconds else 0.0,
            "tokens_per_forward": self.n_tokens / self.nfe if self.nfe else None,
            "nfe": self.nfe,  # forward passes after the prompt's (tokens_per_forward divides by these)
            "prefill_passes": self.prefill_passes,  # NVIDIA's code counts these too: docs/REFERENCE_RULES.md
            "n_tokens": self.n_tokens,
            "seconds": self.seconds,
        }
        if cycles:
            out["mean_accepted_length"] = sum(k * v for k, v in self.accepted.items()) / cycles
            out["accepted_histogram"] = {k: self.accepted[k] for k in sorted(self.accepted)}
        if self.copy_drafted:  # drafts copied from the prompt (engine/decoding/copy_draft.py), counted apart
            out |= {
                "copy_drafted": self.copy_drafted,
                "copy_accepted": self.copy_accepted,
                "copy_acceptance": self.copy_accepted / self.copy_drafted,
            }
        if any(self.confidence):
            out["confidence_histogram"] = list(self.confidence)  # slots per tenth of [0, 1]
        return out


def hf_generate(engine: Engine) -> Callable[[list[int], int], tuple[list[int], float]]:
    """transformers' greedy `generate()` on the engine's weights (mask token suppressed, as NLD engines do)."""
    from engine.evaluation.hf_reference import as_transformers

    hf = as_transformers(engine.model) if engine.native else engine.model
    eos, mask = engine.tokenizer.eos_id, engine.tokenizer.mask_id
    stops = sorted(i for i in engine.stop_ids if i is not None)  # where our completions end

    def run(prompt_ids: list[int], max_new: int) -> tuple[list[int], float]:
        ids = torch.tensor([prompt_ids], device=engine.device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = hf.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new,
                do_sample=False,
                eos_token_id=stops or None,
                pad_token_id=eos,
                suppress_tokens=[mask] if mask is not None else None,
            )
        seconds = time.perf_counter() - t0
        new = out[0, len(prompt_ids) :].tolist()
        end = next((i for i, t in enumerate(new) if t in stops), len(new))
        return new[:end], seconds

    return run


def run_bench(
    engine: Engine,
    max_new_tokens: int = 64,
    modes: list[str] | None = None,
    repeats: int = 1,
    progress: Callable[[int, int, str], None] | None = None,
    warmup_rounds: int | None = None,
    block_size: int | None = None,
) -> dict:
    """`warmup_rounds` untimed passes over every prompt come first (default: 1 on CUDA, 0 elsewhere):
    Triton compiles a kernel variant for each new specialization of its integer arguments (equal
    to 1, divisible by 16), which the prompts' lengths and cache lengths first meet there."""
    # AR always runs: it is the baseline of every speed-up and of the lossless check.
    modes = [
        m for m in MODES if (m == "ar" or m in (modes or DEFAULT_MODES)) and (engine.native or m == "ar")
    ]
    generate = hf_generate(engine)
    reqs = prompts()
    warmup_rounds = (1 if engine.device.type == "cuda" else 0) if warmup_rounds is None else warmup_rounds
    total, done = len(reqs) * (warmup_rounds + repeats) * (len(modes) + 1), 0
    # Warm up every path once so one-time costs (allocation, lazy tables) are not timed.
    for m in modes:
        warm = engine.complete(
            Request(
                prompt="def f(x):\n",
                config=GenerationConfig(max_new_tokens=8, block_size=block_size, **MODES[m]),
            )
        )
    generate(warm.prompt_token_ids, 8)
    for rnd in range(warmup_rounds + repeats):
        if rnd in (0, warmup_rounds):  # the warm-up's counts are dropped when the timed rounds start
            tallies = {m: Tally() for m in modes + ["hf-generate"]}
            ar_prompts: list[list[int]] = []
        for req in reqs:
            prompt_ids = None
            for m in modes:
                cfg = GenerationConfig(
                    max_new_tokens=max_new_tokens, heal=False, block_size=block_size, **MODES[m]
                )  # HF cannot heal
                engine.runner.crop(0)  # no prompt reuse between modes: each pays its prefill
                t = tallies[m]
                for event in engine.generate(
                    Request(prompt=req.prompt, prefix=req.prefix, suffix=req.suffix, config=cfg)
                ):
                    if isinstance(event, Step):
                        t.add_step(event)
                    elif isinstance(event, Done):
                        d = event
                prompt_ids = d.prompt_token_ids
                if m == "ar":
                    ar_prompts.append(prompt_ids)
                t.seconds += d.seconds
                t.n_tokens += d.n_tokens
                t.nfe += d.nfe
                t.prefill_passes += d.prefill_passes
                t.accepted.update(d.accepted_histogram)
                t.copy_drafted += d.copy_drafted
                t.copy_accepted += d.copy_accepted
                t.outputs.append(d.token_ids)
                done += 1
                if progress:
                    progress(done, total, m)
            ids, seconds = generate(prompt_ids, max_new_tokens)
            t = tallies["hf-generate"]
            t.seconds += seconds
            t.n_tokens += len(ids)
            t.nfe += max(len(ids) - 1, 0)
            t.prefill_passes += 1
            t.outputs.append(ids)
            done += 1
            if progress:
                progress(done, total, "hf-generate")
    results = {m: t.result() for m, t in tallies.items()}
    ar_tps = results["ar"]["tokens_per_second"]
    for r in results.values():
        r["speedup_vs_ar"] = r["tokens_per_second"] / ar_tps if ar_tps else None
    ar_out = tallies["ar"].outputs
    spec = [m for m in modes if m in LOSSLESS_MODES]
    differing = {
        m: [i for i, (o, a) in enumerate(zip(tallies[m].outputs, ar_out)) if o != a]
        for m in spec + ["hf-generate"]
    }
    same = {
        m: all(parted_at_tie(engine, ar_prompts[i], ar_out[i], tallies[m].outputs[i]) for i in differing[m])
        for m in spec + ["hf-generate"]
    }
    return {
        "device": device_name(engine.device),
        "model": engine.name,
        "dtype": engine.dtype,
        "max_new_tokens": max_new_tokens,
        "block_size": block_size or engine.default_block_size if engine.native else None,
        "prompts": len(reqs),
        "repeats": repeats,
        "results": results,
        # per pass width: time, weight-matmul time, overhead factor (engine/evaluation/pass_profile.py)
        "profile": profile_engine(engine, block=block_size) if engine.native else None,
        "lossless": {m: same[m] for m in spec},
        "parted_at_ties": {m: len(differing[m]) for m in spec if same[m]},
        # transformers on the same weights: equal to our AR, or parting only at rounding ties
        "hf_matches_ar": same["hf-generate"],
        "hf_parted_at_ties": len(differing["hf-generate"]),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
