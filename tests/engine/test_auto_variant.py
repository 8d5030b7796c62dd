"""`auto`'s choice of self-speculation variant: linear on a CPU; on a GPU the one whose timed cycle
yields more, with the timing leaving the cache as it was."""

from __future__ import annotations

import torch

from engine.modes.auto import QUADRATIC_YIELD, auto_variant, choose, time_cycles


def test_quadratic_only_when_its_cycle_is_cheap_enough_to_outrun_its_lower_acceptance():
    assert choose(1.0, 0.5) == "quadratic"
    assert choose(1.0, QUADRATIC_YIELD + 0.05) == "linear"  # cheaper per cycle, fewer tokens per second
    assert choose(1.0, 2.0) == "linear"


def test_a_cpu_runs_linear_without_timing_anything(tiny_engine, monkeypatch):
    calls = []
    monkeypatch.setattr(tiny_engine.runner, "forward", lambda *a, **k: calls.append(a))
    assert auto_variant(tiny_engine.runner, 8, tiny_engine.tokenizer.mask_id) == "linear"
    assert not calls


def test_timing_the_cycles_leaves_the_cache_untouched(tiny_engine):
    runner = tiny_engine.runner
    runner.crop(0)
    runner.extend(list(range(10, 30)))
    k, length, ids = runner.cache.k[:, :, :, :20].clone(), runner.length, list(runner.ids)
    linear, quadratic = time_cycles(runner, 8, tiny_engine.tokenizer.mask_id)
    assert linear > 0 and quadratic > 0
    assert runner.length == length and runner.ids == ids
    assert torch.equal(runner.cache.k[:, :, :, :20], k)

