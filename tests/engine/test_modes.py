"""The three modes on one checkpoint: self-speculation is lossless, quadratic heads are causal."""

from __future__ import annotations

import pytest
import torch

from engine.decoding.modes.self_spec import quadratic_mask
from engine.evaluation.lossless import parted_at_tie
from engine.events import Step
from kernels.ops import Pattern
from tests.engine.util import run

PROMPTS = ["def forward(self, x", "import os\nclass Foo:\n    def __init__(self):\n", "while True:\n    if x"]


@pytest.mark.parametrize("speculation", ["linear", "quadratic"])
@pytest.mark.parametrize("block_size", [4, 8, 32])
def test_self_spec_equals_ar_greedy(tiny_engine, speculation, block_size):
    for prompt in PROMPTS:
        _, ar = run(tiny_engine, prompt=prompt, mode="ar", max_new_tokens=40, heal=False)
        _, spec = run(
            tiny_engine,
            prompt=prompt,
            mode="self-spec",
            speculation=speculation,
            block_size=block_size,
            max_new_tokens=40,
            heal=False,
        )
        assert spec.mode == f"self-spec-{speculation}"
        assert parted_at_tie(tiny_engine, ar.prompt_token_ids, ar.token_ids, spec.token_ids, tol=1e-5)
        assert spec.text == ar.text or spec.token_ids != ar.token_ids
        assert sum(spec.accepted_histogram.values()) > 0


def test_quadratic_runs_blocks_wider_than_the_checkpoints(tiny_engine):
    """The cache's scratch room is sized for the checkpoint's block; a wider request grows it."""
    block = tiny_engine.default_block_size + 2
    _, ar = run(tiny_engine, prompt=PROMPTS[0], mode="ar", max_new_tokens=block, heal=False)
    _, spec = run(
        tiny_engine,
        prompt=PROMPTS[0],
        mode="self-spec",
        speculation="quadratic",
        block_size=block,
        max_new_tokens=block,
        heal=False,
    )
    assert tiny_engine.runner.cache.scratch >= block * (block + 1)
    assert parted_at_tie(tiny_engine, ar.prompt_token_ids, ar.token_ids, spec.token_ids, tol=1e-5)


def test_self_spec_sampling_is_seeded_and_counts_forwards(tiny_engine):
    events, a = run(
        tiny_engine, prompt="x = ", mode="self-spec", temperature=0.8, top_p=0.9, seed=3, max_new_tokens=30
    )
    b = run(
        tiny_engine, prompt="x = ", mode="self-spec", temperature=0.8, top_p=0.9, seed=3, max_new_tokens=30
    )[1]
    assert a.token_ids == b.token_ids
    verify = [e for e in events if isinstance(e, Step) and e.kind == "verify"]
    drafts = [e for e in events if isinstance(e, Step) and e.kind == "draft"]
    assert len(verify) == sum(a.accepted_histogram.values())
    # a verify pass per cycle, and a draft pass in each cycle that had no copy to verify
    assert a.nfe == len(verify) + len(drafts) and len(drafts) == sum(not e.copied for e in verify)
    assert a.n_tokens == 30


def test_unseeded_sampling_leaves_the_callers_random_state_alone(tiny_engine):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    run(tiny_engine, prompt="x = ", mode="ar", temperature=0.8, max_new_tokens=3)
    assert torch.equal(torch.rand(3), expected)


def test_quadratic_row_heads_equal_causal_logits(tiny_engine):
    runner, n = tiny_engine.runner, 5
    prompt = tiny_engine.tokenizer.encode("def f(a, b):\n    return")
    draft = tiny_engine.tokenizer.encode(" a + b if a else b")[:n]
    runner.crop(0)
    runner.extend(prompt)
    L, w, mask_id = runner.length, n + 1, tiny_engine.tokenizer.mask_id
    causal = runner.logits(runner.forward(draft, Pattern.CAUSAL))
    tokens = [t for d in draft for t in [d] + [mask_id] * n]
    positions = L + torch.arange(n).repeat_interleave(w) + torch.arange(w).repeat(n)
    hidden = runner.forward(tokens, Pattern.MASK, positions, quadratic_mask(n))
    heads = runner.logits(hidden[::w])
    finite = torch.isfinite(causal)
    torch.testing.assert_close(heads[finite], causal[finite], atol=1e-5, rtol=1e-5)
    assert runner.length == L  # neither pass wrote the cache


def test_quadratic_mask_layout():
    m = quadratic_mask(3)  # rows [d0 M M M] [d1 M M M] [d2 M M M]
    head = lambda r: r * 4  # noqa: E731
    assert m[head(2), head(0)] and m[head(2), head(1)] and m[head(2), head(2)]
    assert not m[head(0), head(1)]  # heads are causal
    assert not m[head(1), head(1) + 1]  # heads never see masks
    assert m[head(1) + 2, head(1) + 3] and m[head(1) + 2, head(0)] and m[head(1) + 2, head(1)]
    assert not m[head(1) + 2, head(2)] and not m[head(1) + 2, head(0) + 1]


def test_draft_and_verify_events_carry_acceptance(tiny_engine):
    events, done = run(tiny_engine, prompt=PROMPTS[0], mode="self-spec", block_size=8, max_new_tokens=20)
    steps = [e for e in events if isinstance(e, Step)]
    kinds = [s.kind for s in steps]
    assert kinds[0] == "prefill" and "draft" in kinds and "verify" in kinds
    verify = [s for s in steps if s.kind == "verify"]
    assert all(s.drafted is not None and 1 <= s.accepted <= 8 for s in verify)
    assert sum(s.accepted for s in verify) >= done.n_tokens - 1


def test_auto_uses_self_spec_on_native_cpu(tiny_engine):
    assert (
        tiny_engine.resolve_mode(__import__("engine").GenerationConfig(mode="auto"))[0] == "self-spec-linear"
    )
