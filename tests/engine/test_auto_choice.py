"""`auto` on an NLD checkpoint: the mode with the most tokens per second from the pass costs timed
at load (fake cost tables here) and the acceptance seen: a self-spec variant, AR while recent drafts
fall short of the break-even, diffusion only when the request allows a lossy mode."""

from __future__ import annotations

import torch

from engine.decoding.modes.auto import (
    DIFFUSION_PRIOR,
    LINEAR_PRIOR,
    MIN_EVIDENCE,
    PROBE_EVERY,
    QUADRATIC_YIELD,
    AutoPolicy,
    PassCosts,
    auto_policy,
    choose,
    time_passes,
)
from engine.events import Note
from tests.engine.util import run


def costs(ar=1.0, draft=1.0, verify=1.0, quadratic=100.0) -> PassCosts:
    return PassCosts(ar_s=ar, draft_s=draft, verify_s=verify, quadratic_s=quadratic)


def test_quadratic_only_when_its_cycle_is_cheap_enough_to_outrun_its_lower_acceptance():
    assert choose(costs(quadratic=1.0)).variant == "quadratic"
    assert choose(costs(quadratic=1.0)).break_even == 1.0
    assert choose(costs(quadratic=2 * QUADRATIC_YIELD + 0.1)).variant == "linear"  # cheaper, fewer tokens/s
    linear = choose(costs(draft=1.5, verify=1.0))
    assert (linear.variant, linear.break_even) == ("linear", 2.5)  # break-even: cycle time over AR step time


def test_diffusion_only_when_allowed_and_faster_than_ar_and_self_spec():
    cheap_blocks = choose(costs(ar=1.0, draft=1.0, verify=1.0))  # a B-token pass costs an AR step
    assert cheap_blocks.mode() == "self-spec-linear"  # lossless unless the request allows more
    # diffusion: 2.6 tokens per 1 s pass; self-spec at NLD's prior: 6 per 2 s cycle; AR: 1 per s
    assert DIFFUSION_PRIOR / 1.0 < LINEAR_PRIOR / 2.0
    assert cheap_blocks.mode(diffusion=True) == "self-spec-linear"
    for _ in range(MIN_EVIDENCE):
        cheap_blocks.record(2)  # drafts accept 2 per cycle: 1 token/s, short of diffusion's 2.6
    assert cheap_blocks.mode(diffusion=True) == "diffusion"
    dear_blocks = choose(costs(ar=1.0, draft=4.0, verify=4.0))  # a B-token pass costs 4 AR steps
    for _ in range(MIN_EVIDENCE):
        dear_blocks.record(2)
    assert dear_blocks.mode(diffusion=True) == "ar"  # 2.6 / 4 s < 1 token/s


def test_diffusion_is_judged_by_its_own_tokens_per_forward_once_it_has_them():
    auto = choose(costs(ar=1.0, draft=1.0, verify=1.0))
    for _ in range(MIN_EVIDENCE):
        auto.record(1)  # self-spec never pays: AR's 1 token/s is the lossless rate
    assert auto.mode(diffusion=True) == "diffusion"  # the prior: 2.6 tokens per pass
    auto.record_diffusion(tokens=MIN_EVIDENCE, passes=MIN_EVIDENCE)  # measured: 1 token per pass
    assert auto.mode(diffusion=True) != "diffusion"


def test_a_cpu_extrapolates_the_quadratic_pass_from_the_others(tiny_engine, monkeypatch):
    from engine.decoding.modes import auto

    monkeypatch.setattr(
        auto,
        "_best_seconds",
        lambda runner, passes: (
            {"ar": 1.0, "draft": 2.0, "verify": 3.0} | ({"quadratic": 7.0} if "quadratic" in passes else {})
        ),
    )
    cpu = time_passes(tiny_engine.runner, 8, tiny_engine.tokenizer.mask_id, quadratic=False)
    assert cpu == PassCosts(1.0, 2.0, 3.0, 1.0 + (3.0 - 1.0) / 7 * (8 * 9 - 1))
    gpu = time_passes(tiny_engine.runner, 8, tiny_engine.tokenizer.mask_id, quadratic=True)
    assert gpu.quadratic_s == 7.0


def test_a_cpu_times_a_quadratic_pass_only_where_its_estimate_is_cheap(tiny_engine, monkeypatch):
    """The tiny model's passes cost milliseconds: its quadratic pass is timed, not taken from a
    straight line through two nearly equal timings. Above the threshold (a large model) it is not."""
    from engine.decoding.modes import auto

    timed = []
    real = auto.quadratic_pass
    monkeypatch.setattr(auto, "quadratic_pass", lambda *a: timed.append(1) or real(*a))
    choice = auto_policy(tiny_engine.runner, 8, tiny_engine.tokenizer.mask_id)
    assert timed and choice.break_even > 0 and choice.costs.quadratic_s > 0
    monkeypatch.setattr(auto, "QUADRATIC_TIMED_BELOW_S", 0.0)
    monkeypatch.setattr(auto, "quadratic_pass", lambda *a: (_ for _ in ()).throw(AssertionError("timed")))
    costs = auto_policy(tiny_engine.runner, 8, tiny_engine.tokenizer.mask_id).costs
    per_token = max(costs.verify_s - costs.ar_s, 0.0) / 7
    assert costs.quadratic_s == costs.ar_s + per_token * (8 * 9 - 1)


def test_timing_leaves_the_cache_untouched(tiny_engine):
    runner = tiny_engine.runner
    runner.crop(0)
    runner.extend(list(range(10, 30)))
    k, length, ids = runner.cache.k[:, :, :, :20].clone(), runner.length, list(runner.ids)
    timed = time_passes(runner, 8, tiny_engine.tokenizer.mask_id, quadratic=True)
    assert min(timed.ar_s, timed.draft_s, timed.verify_s, timed.quadratic_s) > 0
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
    assert choose(costs(draft=1.2, verify=0.8)).verify_share == 0.4
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


def test_a_request_that_allows_diffusion_runs_it_where_fastest_and_feeds_its_pool(tiny_engine, monkeypatch):
    auto = choose(costs(ar=1.0, draft=1.0, verify=1.0))
    for _ in range(MIN_EVIDENCE):
        auto.record(1)  # drafts never pay here
    monkeypatch.setattr(tiny_engine, "auto", auto)
    _, lossless = run(tiny_engine, prompt="x", mode="auto", max_new_tokens=16)
    assert lossless.mode == "ar"
    events, done = run(tiny_engine, prompt="x", mode="auto", max_new_tokens=16, auto_diffusion=True)
    assert done.mode == "diffusion" and [e.message for e in events if isinstance(e, Note)] == [
        "auto: diffusion (allowed by auto_diffusion) is the fastest mode on this device"
    ]
    assert list(auto.diffusion) == [(len(done.token_ids), done.nfe)]


def test_long_timings_are_kept_and_read_back_only_under_their_own_key(tiny_checkpoint, tmp_path, monkeypatch):
    """A load whose timing took long keeps its pass costs; a later load of the same checkpoint, dtype
    and thread count reads them instead of timing; another dtype or thread count, or a damaged file,
    times again."""
    import engine
    from engine.decoding.modes import auto, saved_costs

    monkeypatch.setenv("NEMODIFF_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the engine keeps torch's thread count as it is
    timed = []
    real = auto.time_passes
    monkeypatch.setattr(auto, "time_passes", lambda *a: timed.append(a) or real(*a))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        monkeypatch.setattr(saved_costs, "SAVE_ABOVE_S", 1e9)  # a quick timing: nothing kept
        engine.load(str(tiny_checkpoint), device="cpu", dtype="fp32")
        assert not (tmp_path / "pass_costs").exists()
        monkeypatch.setattr(saved_costs, "SAVE_ABOVE_S", 0.0)  # every timing "long"
        monkeypatch.setattr(saved_costs, "KEEP_CPU_SHARE", 0.0)  # and on its cores
        first = engine.load(str(tiny_checkpoint), device="cpu", dtype="fp32").auto
        (kept,) = (tmp_path / "pass_costs").iterdir()
        assert len(timed) == 2
        again = engine.load(str(tiny_checkpoint), device="cpu", dtype="fp32").auto
        assert len(timed) == 2 and again.costs == first.costs and again.break_even == first.break_even
        engine.load(str(tiny_checkpoint), device="cpu", dtype="bf16")  # another dtype: its own key
        torch.set_num_threads(2)
        engine.load(str(tiny_checkpoint), device="cpu", dtype="fp32")  # another thread count
        assert len(timed) == 4 and len(list((tmp_path / "pass_costs").iterdir())) == 3
        torch.set_num_threads(1)
        kept.write_text('{"key": [], "seconds": {"ar_s": -1}}')  # damaged: ignored, timed and kept again
        engine.load(str(tiny_checkpoint), device="cpu", dtype="fp32")
        assert len(timed) == 5 and '"ar_s": -1' not in kept.read_text()
    finally:
        torch.set_num_threads(before)


def test_only_long_timings_whose_threads_kept_their_cores_are_kept():
    from engine.decoding.modes.saved_costs import worth_keeping

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert worth_keeping(10.0, 19.0, cpu)  # two threads busy throughout
        assert not worth_keeping(10.0, 10.0, cpu)  # one of them mostly waiting: other jobs had the cores
        assert not worth_keeping(1.0, 2.0, cpu)  # a quick timing: nothing to save
        assert worth_keeping(10.0, 1.0, gpu)  # the GPU's passes: the CPU mostly waits
    finally:
        torch.set_num_threads(before)
