"""The engine's tokens equal NVIDIA's rules re-implemented plainly (tests/engine/reference_rules.py):
block diffusion at blocks 8 and 32 and thresholds 0.025 / 0.15 / 0.9, linear self-speculation, and
quadratic self-speculation against linear, on plain and FIM prompts, on a random checkpoint and the
demo model, fp32, temperature 0. Generations are whole blocks (1 + k B tokens), so the engine's
shortened last block (docs/REFERENCE_RULES.md) does not come into it."""

from __future__ import annotations

import pytest

import engine
from engine import GenerationConfig, Request
from tests.engine.reference_rules import Reference

PROMPTS = {
    "plain": [
        dict(prompt="def add(a, b):\n"),
        dict(prompt="import os\n\n\nclass Config:\n    def __init__(self"),
    ],
    "fim": [
        dict(prefix="def mean(xs):\n    total = ", suffix="\n    return total / len(xs)\n"),
        dict(prefix="for i in range(10):\n    if ", suffix=":\n        print(i)\n"),
    ],
}


# Code that repeats itself: the demo model continues it, and copies of it are right.
REPEATING = dict(
    prompt="def test_a():\n    assert f(1) == 1\n\n\ndef test_b():\n    assert f(2) == 2\n\n\ndef test_c():\n"
)


@pytest.fixture(scope="module", params=["random", "demo"])
def eng(request, tiny_checkpoint):
    return engine.load(str(tiny_checkpoint) if request.param == "random" else "demo", device="cpu")


def generate(eng, fields: dict, **config):
    events = list(eng.generate(Request(config=GenerationConfig(heal=False, **config), **fields)))
    return events[-1]


def reference(eng) -> Reference:
    return Reference(eng.model, eng.stop_ids)


def length(block: int) -> int:
    return 1 + 2 * block if block == 8 else 1 + block


@pytest.mark.parametrize("kind", ["plain", "fim"])
@pytest.mark.parametrize("threshold", [0.025, 0.15, 0.9])
@pytest.mark.parametrize("block", [8, 32])
def test_diffusion_follows_the_reference_rule(eng, block, threshold, kind):
    for fields in PROMPTS[kind]:
        done = generate(
            eng,
            fields,
            mode="diffusion",
            block_size=block,
            threshold=threshold,
            max_new_tokens=length(block),
            copy_drafts=False,
        )
        ref = reference(eng)
        assert done.token_ids == ref.diffusion(done.prompt_token_ids, block, threshold, length(block))
        assert done.nfe == ref.passes  # same denoising steps per block


@pytest.mark.parametrize("block", [8, 32])
def test_diffusion_verifies_copies_in_its_closing_pass(eng, block):
    """Copies of the text around the cursor ride the block's closing causal pass; the tokens and the
    passes equal the plain rule (accept AR's choices while they match the copy, plus one)."""
    copied = 0
    for fields in [*PROMPTS["plain"], *PROMPTS["fim"], REPEATING]:
        done = generate(eng, fields, mode="diffusion", block_size=block, threshold=0.15, max_new_tokens=48)
        ref = reference(eng)
        assert done.token_ids == ref.diffusion(done.prompt_token_ids, block, 0.15, 48, copies=True)
        assert done.nfe == ref.passes
        copied += done.copy_accepted
    assert copied > 0  # the repeating prompt's copies were accepted, so the rule above was exercised


@pytest.mark.parametrize("kind", ["plain", "fim"])
@pytest.mark.parametrize("block", [8, 32])
def test_self_speculation_follows_the_reference_rule(eng, block, kind):
    for fields in PROMPTS[kind]:
        n = length(block)
        linear = generate(
            eng, fields, mode="self-spec", speculation="linear", block_size=block, max_new_tokens=n
        )
        quadratic = generate(
            eng, fields, mode="self-spec", speculation="quadratic", block_size=block, max_new_tokens=n
        )
        ar = generate(eng, fields, mode="ar", max_new_tokens=n)
        expected = reference(eng).linear_spec(linear.prompt_token_ids, block, n)
        assert linear.token_ids == expected
        assert quadratic.token_ids == expected
        assert ar.token_ids == expected == reference(eng).ar(ar.prompt_token_ids, n)
