"""`auto` on an NLD checkpoint: the variant with more accepted tokens per second (linear on a CPU),
a break-even acceptance from passes timed at load, and a switch to AR below it."""

from __future__ import annotations

import torch

from engine.events import Note
from engine.modes.auto import QUADRATIC_YIELD, AutoChoice, auto_choice, choose, time_passes
from tests.engine.util import run


def test_quadratic_only_when_its_cycle_is_cheap_enough_to_outrun_its_lower_acceptance():
    assert choose(1.0, 2.0, 1.0) == AutoChoice("quadratic", 1.0)
    assert choose(1.0, 2.0, 2 * QUADRATIC_YIELD + 0.1).variant == "linear"  # cheaper cycle, fewer tokens per second
    assert choose(1.0, 2.5) == AutoChoice("linear", 2.5)  # break-even: cycle time over AR step time


def test_a_cpu_never_times_a_quadratic_pass(tiny_engine, monkeypatch):
    from engine.modes import auto

    monkeypatch.setattr(auto, "quadratic_pass", lambda *a: (_ for _ in ()).throw(AssertionError("timed")))
    choice = auto_choice(tiny_engine.runner, 8, tiny_engine.tokenizer.mask_id)
    assert choice.variant == "linear" and choice.break_even > 0
    assert tiny_engine.resolve_mode(__import__("engine").GenerationConfig(mode="auto"))[0] == "self-spec-linear"


def test_timing_leaves_the_cache_untouched(tiny_engine):
    runner = tiny_engine.runner
    runner.crop(0)
    runner.extend(list(range(10, 30)))
    k, length, ids = runner.cache.k[:, :, :, :20].clone(), runner.length, list(runner.ids)
    costs = time_passes(runner, 8, tiny_engine.tokenizer.mask_id, quadratic=True)
    assert set(costs) == {"ar_s", "linear_s", "quadratic_s"} and all(s > 0 for s in costs.values())
    assert runner.length == length and runner.ids == ids
    assert torch.equal(runner.cache.k[:, :, :, :20], k)


def test_auto_keeps_drafting_above_the_break_even_and_switches_to_ar_below_it(tiny_engine, monkeypatch):
    _, ar = run(tiny_engine, prompt="x", mode="ar", max_new_tokens=40)
    for break_even, switched in ((0.5, False), (9.0, True)):
        monkeypatch.setattr(tiny_engine, "auto", AutoChoice("linear", break_even))
        events, done = run(tiny_engine, prompt="x", mode="auto", max_new_tokens=40)
        notes = [e for e in events if isinstance(e, Note) and "AR" in e.message]
        assert bool(notes) == switched
        assert done.token_ids == ar.token_ids  # lossless either way
