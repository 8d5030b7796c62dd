"""The event stream contract: notes, cancellation, the AR fallback, bad requests."""

from __future__ import annotations

import threading
import time

import pytest
import torch

import engine
from engine import Commit, Done, GenerationConfig, Note, Request, RequestError, Step
from tests.engine.util import run


def test_events_end_with_done_and_commits_add_up(tiny_engine):
    events, done = run(tiny_engine, prompt="def f(", mode="self-spec", max_new_tokens=20)
    assert [type(e) for e in events].count(Done) == 1
    assert done.tokens_per_forward == done.n_tokens / done.nfe
    assert "".join(e.text for e in events if isinstance(e, Commit)) == done.text


def test_cancel_stops_within_one_forward(tiny_engine):
    gen = tiny_engine.generate(Request(prompt="x", config=GenerationConfig(mode="ar", max_new_tokens=500)))
    steps = 0
    for event in gen:
        if isinstance(event, Step):
            steps += 1
            if steps == 3:
                gen.cancel()
        if isinstance(event, Done):
            break
    assert event.stop_reason == "cancelled"
    assert steps == 3  # no forward pass ran after the cancel


def test_cancel_from_another_thread(tiny_engine, monkeypatch):
    # Random text must run on until the cancel: nothing may end it early, neither its FIM tokens nor EOS.
    monkeypatch.setattr(type(tiny_engine), "stop_ids", set())
    gen = tiny_engine.generate(
        Request(prompt="x", config=GenerationConfig(mode="diffusion", max_new_tokens=2000, block_size=8))
    )
    timer = threading.Timer(0.2, gen.cancel)
    timer.start()
    t0 = time.perf_counter()
    done = [e for e in gen if isinstance(e, Done)][0]
    assert done.stop_reason == "cancelled" and time.perf_counter() - t0 < 5


@pytest.mark.parametrize(
    "bad",
    [
        dict(mode="fast"),
        dict(max_new_tokens=0),
        dict(speculation="cubic"),
        dict(temperature=-1),
        dict(top_p=0),
        dict(block_size=1),
        dict(top_k=-1),
    ],
)
def test_bad_requests_raise_one_line_errors(tiny_engine, bad):
    with pytest.raises(RequestError) as e:
        list(tiny_engine.generate(Request(prompt="x", config=GenerationConfig(**bad))))
    assert "\n" not in str(e.value)


def test_top_k_keeps_only_the_k_likeliest_tokens():
    from engine.decoding.sampling import Sampler

    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0, -1.0]])
    probs = Sampler(1.0, 1.0, 0, torch.device("cpu"), top_k=2).probs(logits)
    assert (probs[0, [0, 2, 4]] == 0).all() and torch.allclose(
        probs[0, [1, 3]], torch.softmax(torch.tensor([3.0, 2.0]), 0)
    )
    one = Sampler(5.0, 1.0, 0, torch.device("cpu"), top_k=1)
    assert all(one.pick(logits)[0].item() == 1 for _ in range(20))  # top-k 1 is greedy at any temperature
    assert torch.equal(
        Sampler(1.0, 1.0, 0, torch.device("cpu"), top_k=0).probs(logits), torch.softmax(logits, -1)
    )


@pytest.fixture(scope="module")
def fallback_engine(llama_checkpoint):
    return engine.load(str(llama_checkpoint), device="cpu")


def test_fallback_runs_ar_with_a_note(fallback_engine):
    events, done = run(fallback_engine, prompt="def f(x):", mode="diffusion", max_new_tokens=8)
    notes = [e for e in events if isinstance(e, Note)]
    assert notes and "AR" in notes[0].message and done.notes == [notes[0].message]
    assert done.mode == "ar" and done.n_tokens == 8
    _, auto = run(fallback_engine, prompt="def f(x):", mode="auto", max_new_tokens=8)
    assert auto.mode == "ar" and not auto.notes and auto.token_ids == done.token_ids


def test_fallback_greedy_matches_its_own_generate(fallback_engine):
    from engine.evaluation.mode_bench import hf_generate

    _, done = run(fallback_engine, prompt="import os", mode="ar", max_new_tokens=10, heal=False)
    assert hf_generate(fallback_engine)(done.prompt_token_ids, 10)[0] == done.token_ids


def test_auto_switches_to_ar_when_drafts_never_match(tiny_engine, monkeypatch):
    from engine.decoding.modes import self_spec

    real = self_spec._draft
    monkeypatch.setattr(
        self_spec,
        "_draft",
        lambda ctx, head, n: (
            head + [ctx.mask_id - 1] * (n - len(head)) if ctx.auto is not None else real(ctx, head, n)
        ),
    )
    # no copy of the context to draft either
    events, done = run(tiny_engine, prompt="x", mode="auto", max_new_tokens=30, copy_drafts=False)
    assert any(isinstance(e, Note) and "AR" in e.message for e in events)
    _, ar = run(tiny_engine, prompt="x", mode="ar", max_new_tokens=30)
    assert done.token_ids == ar.token_ids
