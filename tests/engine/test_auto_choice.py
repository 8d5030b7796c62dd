"""`auto` on an NLD checkpoint: the variant with more accepted tokens per second (linear on a CPU),
a break-even acceptance from passes timed at load, and AR while recent drafts fall short of it."""

from __future__ import annotations

import torch

from engine.decoding.modes.auto import (
    MIN_EVIDENCE,
    PROBE_EVERY,
    QUADRATIC_YIELD,
    AutoPolicy,
    auto_policy,
    choose,
    time_passes,
)
from engine.events import Note
from tests.engine.util import run


def test_quadratic_only_when_its_cycle_is_cheap_enough_to_outrun_its_lower_acceptance():
    assert choose(1.0, 2.0, 1.0) == AutoPolicy("quadratic", 1.0)
    assert (
        choose(1.0, 2.0, 2 * QUADRATIC_YIELD + 0.1).variant == "linear"
    )  # cheaper cycle, fewer tokens per second
    assert choose(1.0, 2.5) == AutoPolicy("linear", 2.5)  # break-even: cycle time over AR step time


def test_a_cpu_never_times_a_quadratic_pass(tiny_engine, monkeypatch):
    from engine.decoding.modes import auto

    monkeypatch.setattr(auto, "quadratic_pass", lambda *a: (_ for _ in ()).throw(AssertionError("timed")))
    choice = auto_policy(tiny_engine.runner, 8, tiny_engine.tokenizer.mask_id)
    assert choice.variant == "linear" and choice.break_even > 0
    assert (
        tiny_engine.resolve_mode(__import__("engine").GenerationConfig(mode="auto"))[0] == "self-spec-linear"
    )


def test_timing_leaves_the_cache_untouched(tiny_engine):
    runner = tiny_engine.runner
    runner.crop(0)
    runner.extend(list(range(10, 30)))
    k, length, ids = runner.cache.k[:, :, :, :20].clone(), runner.length, list(runner.ids)
    costs = time_passes(runner, 8, tiny_engine.tokenizer.mask_id, quadratic=True)
    assert set(costs) == {"ar_s", "linear_s", "verify_s", "quadratic_s"} and all(
        s > 0 for s in costs.values()
    )
    assert runner.length == length and runner.ids == ids
    assert torch.equal(runner.cache.k[:, :, :, :20], k)


def test_auto_runs_ar_while_pooled_drafts_fall_short_and_probes_now_and_then():
    auto = AutoPolicy("linear", 2.0)
    modes = []
    for _ in range(MIN_EVIDENCE):
        assert auto.mode() == "self-spec-linear"  # too little evidence yet
        auto.record(1)
    for _ in range(2 * PROBE_EVERY):
        modes.append(auto.mode())
        auto.started(modes[-1])
    assert modes.count("self-spec-linear") == 2 and modes[PROBE_EVERY - 1] == "self-spec-linear"
    for _ in range(MIN_EVIDENCE * 4):
        auto.record(3)  # the probes find drafts outrunning AR again
    assert auto.mode() == "self-spec-linear"


def test_cycles_whose_copy_skipped_the_draft_pass_count_at_their_cost():
    assert choose(1.0, 2.0, verify_s=0.8) == AutoPolicy("linear", 2.0, 0.4)
    full, copied = AutoPolicy("linear", 2.5, 0.4), AutoPolicy("linear", 2.5, 0.4)
    for _ in range(MIN_EVIDENCE):
        full.record(2)  # 2 tokens per full cycle: short of 2.5
        copied.record(2, draft_pass=False)  # the same tokens for 0.4 of the time: 5 per cycle's time
    assert full.falling_short and not copied.falling_short


def test_auto_generations_feed_the_pool_and_start_in_ar_once_it_falls_short(tiny_engine, monkeypatch):
    _, ar = run(tiny_engine, prompt="x", mode="ar", max_new_tokens=40)
    auto = AutoPolicy("linear", 9.0)  # no block of 8 can outrun this
    monkeypatch.setattr(tiny_engine, "auto", auto)
    _, first = run(tiny_engine, prompt="x", mode="auto", max_new_tokens=40)
    assert first.accepted_histogram and len(auto.recent) == sum(first.accepted_histogram.values())
    for _ in range(MIN_EVIDENCE):
        auto.record(2)
    events, second = run(tiny_engine, prompt="x", mode="auto", max_new_tokens=40)
    assert [e.message for e in events if isinstance(e, Note)] == [
        "auto: recent drafts have not outrun AR on this device; running AR"
    ]
    assert not second.accepted_histogram and second.mode == "ar"
    assert first.token_ids == second.token_ids == ar.token_ids


def test_a_generation_whose_drafts_never_match_switches_to_ar_and_says_so_in_done(tiny_engine, monkeypatch):
    from engine.decoding.modes import auto

    _, ar = run(tiny_engine, prompt="x", mode="ar", max_new_tokens=40)
    monkeypatch.setattr(tiny_engine, "auto", AutoPolicy("linear", 1.0))
    monkeypatch.setattr(auto, "GIVE_UP_BELOW", float("inf"))  # no draft is ever good enough
    events, done = run(tiny_engine, prompt="x", mode="auto", max_new_tokens=40)
    notes = [e.message for e in events if isinstance(e, Note)]
    assert (
        notes
        == ["auto: drafts are almost never accepted on this prompt; continuing in AR mode"]
        == done.notes
    )
    assert done.mode == "ar" and sum(done.accepted_histogram.values()) == auto.GIVE_UP_AFTER
    assert done.token_ids == ar.token_ids


def test_passes_are_timed_on_the_threads_that_generation_uses(tiny_checkpoint, monkeypatch):
    """The engine picks its CPU thread count first: timed on torch's default threads, the int8 demo
    model's break-even read 2.7-2.8 instead of 3.3-3.4 (8-token passes split across cores, AR steps not)."""
    import engine
    from engine.decoding import engine as engine_module

    seen = []
    real = engine_module.auto_policy
    monkeypatch.setattr(
        engine_module, "auto_policy", lambda *a: (seen.append(torch.get_num_threads()), real(*a))[1]
    )
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        engine.load(str(tiny_checkpoint), device="cpu", dtype="int8")
        assert seen == [1] == [torch.get_num_threads()]  # a small model runs on one thread, timed there too
    finally:
        torch.set_num_threads(before)


def test_slow_passes_are_timed_once_after_the_untimed_round(monkeypatch):
    from types import SimpleNamespace

    from engine.decoding.modes import auto

    runs = []
    monkeypatch.setattr(auto, "TIMING_BUDGET_S", 0.0)  # every pass "slow"
    best = auto._best_seconds(SimpleNamespace(device=torch.device("cpu")), {"ar": lambda: runs.append("ar")})
    assert runs == ["ar", "ar"] and 0 <= best["ar"] < float("inf")
    runs.clear()
    monkeypatch.setattr(auto, "TIMING_BUDGET_S", 1e9)
    auto._best_seconds(SimpleNamespace(device=torch.device("cpu")), {"ar": lambda: runs.append("ar")})
    assert len(runs) == auto.ROUNDS + 1
