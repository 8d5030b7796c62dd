"""Block diffusion invariants on the tiny random checkpoint."""

from __future__ import annotations

import pytest
import torch

import engine
from engine.decoding.commit_policy import EvenSchedule, Threshold
from engine.events import MASKED, Commit, Step
from tests.engine.util import run


def blocks_of(events) -> dict[int, list[Step]]:
    """The denoise steps of each block, in order."""
    blocks: dict[int, list[Step]] = {}
    for e in events:
        if isinstance(e, Step) and e.kind == "denoise":
            blocks.setdefault(e.block, []).append(e)
    return blocks


@pytest.mark.parametrize("threshold,schedule", [(0.9, "threshold"), (0.05, "threshold"), (None, "even")])
def test_commits_are_final_and_at_least_one_per_step(tiny_engine, threshold, schedule):
    events, done = run(
        tiny_engine,
        prompt="def forward(self, x",
        mode="diffusion",
        block_size=8,
        threshold=threshold,
        schedule=schedule,
        max_new_tokens=40,
        max_steps=4 if schedule == "even" else None,
    )
    for block in blocks_of(events).values():
        prev = None
        for s in block:
            n_committed = sum(s.committed)
            if prev is not None:
                assert n_committed >= sum(prev.committed) + 1  # at least one commit per step
                for i, was in enumerate(prev.committed):
                    if was:  # committed tokens never change
                        assert s.committed[i] and s.tokens[i] == prev.tokens[i]
            assert all(c == -1 for c, ok in zip(s.commit_step, s.committed) if not ok)
            prev = s
        if schedule == "even":
            assert len(block) <= 4
    assert done.n_tokens == 40


def test_nfe_per_block_is_steps_plus_one(tiny_engine):
    events, done = run(
        tiny_engine,
        prompt="import os\n",
        mode="diffusion",
        block_size=8,
        max_new_tokens=33,
        copy_drafts=False,
    )
    steps = [e for e in events if isinstance(e, Step) and e.kind != "prefill"]
    assert done.nfe == len(steps)
    denoise = [s for s in steps if s.kind == "denoise"]
    closes = [s for s in steps if s.kind == "ar"]
    # 33 tokens = seed + 4 full blocks of 8; each full block: its denoise steps + 1 causal pass
    assert len(closes) == 4
    for b in range(4):
        assert sum(1 for s in denoise if s.block == b) >= 1


def test_stream_text_equals_final_text(tiny_engine):
    events, done = run(tiny_engine, prompt="class A:\n", mode="diffusion", block_size=8, max_new_tokens=30)
    assert "".join(e.text for e in events if isinstance(e, Commit)) == done.text
    ids = [i for e in events if isinstance(e, Commit) for i in e.token_ids]
    assert ids == done.token_ids


@pytest.fixture(scope="module")
def demo_engine():
    return engine.load("demo", device="cpu")


@pytest.mark.parametrize("model,copies", [("tiny", False), ("demo", True)])
def test_cache_after_blocks_equals_ar_cache(request, model, copies):
    """Every K/V in the cache was written by a causal pass: recomputing from scratch gives the same
    (with copies, which the demo model accepts on repeating code: the closing pass kept exactly
    the accepted ones)."""
    eng = request.getfixturevalue(f"{model}_engine")
    _, done = run(
        eng,
        prompt="def test_a():\n    assert f(1) == 1\n\n\ndef test_b():\n    assert f(2) == 2\n\n\n",
        mode="diffusion",
        block_size=8,
        max_new_tokens=25,
        copy_drafts=copies,
    )
    assert (done.copy_accepted > 0) == copies
    runner = eng.runner
    n = runner.length
    k, v = runner.cache.k[:, :, :, :n].clone(), runner.cache.v[:, :, :, :n].clone()
    ids = list(runner.ids)
    assert ids[: len(done.prompt_token_ids)] == done.prompt_token_ids
    runner.crop(0)
    runner.extend(ids)
    torch.testing.assert_close(runner.cache.k[:, :, :, :n], k, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(runner.cache.v[:, :, :, :n], v, atol=1e-5, rtol=1e-5)


def test_nothing_after_eos(tiny_engine, monkeypatch):
    """Force EOS at the fourth slot of a block: it freezes the slots after it and ends the output."""
    runner, eos = tiny_engine.runner, tiny_engine.tokenizer.eos_id
    plain = runner.logits

    def eos_from_third_masked_row(hidden):
        logits = plain(hidden).clone()  # inference tensors are read-only outside inference mode
        if len(logits) > 1:  # a denoise pass (causal passes ask for one row)
            logits[2:, eos] += 100.0
        return logits

    monkeypatch.setattr(runner, "logits", eos_from_third_masked_row)
    events, done = run(
        tiny_engine, prompt="x", mode="diffusion", block_size=8, threshold=0.0, max_new_tokens=64
    )
    assert done.stop_reason == "eos"
    assert eos not in done.token_ids and done.n_tokens == 3  # seed + two slots before the EOS
    last = [e for e in events if isinstance(e, Step) and e.kind == "denoise"][-1]
    assert last.tokens[3] == eos
    assert last.committed == [True] * 4 + [False] * 4  # frozen after EOS


def test_policies_always_commit_one():
    conf = torch.tensor([0.1, 0.3, 0.2])
    assert Threshold(0.9).choose(conf, 5).tolist() == [False, True, False]
    assert Threshold(0.9).choose(conf, 1).all()
    assert EvenSchedule().choose(conf, 2).sum() == 2
    assert EvenSchedule().choose(conf, 3).tolist() == [False, True, False]


def test_masked_slots_show_as_guesses_or_masked(tiny_engine):
    events, _ = run(tiny_engine, prompt="a", mode="diffusion", block_size=8, max_new_tokens=9)
    first = next(e for e in events if isinstance(e, Step) and e.kind == "denoise")
    assert len(first.tokens) == 8 and first.committed[0]
    assert all(t != MASKED for t in first.tokens)  # after a pass, every slot has a guess


def test_a_stop_string_freezes_the_rest_of_the_block(tiny_engine, monkeypatch):
    """Slots after a committed newline are never denoised when the request stops at newlines."""
    tok = tiny_engine.tokenizer
    newline = tok.encode("\n")[0]
    runner = tiny_engine.runner
    plain = runner.logits

    def newline_at_second_masked_row(hidden):
        logits = plain(hidden).clone()
        if len(logits) > 1:
            logits[1:, newline] += 100.0
        return logits

    monkeypatch.setattr(runner, "logits", newline_at_second_masked_row)
    events, done = run(
        tiny_engine, prompt="x", mode="diffusion", block_size=8, threshold=0.0, max_new_tokens=64, stop=["\n"]
    )
    denoise = [e for e in events if isinstance(e, Step) and e.kind == "denoise"]
    assert done.stop_reason == "stop" and len(denoise) == 1  # one pass: the block ended at the newline
    assert denoise[0].committed == [True] * 3 + [False] * 5
