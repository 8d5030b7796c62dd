"""The lossless check: outputs equal AR greedy, or part from it only where AR's choice was a tie."""

from __future__ import annotations

from engine.evaluation.lossless import first_difference, parted_at_tie
from tests.engine.util import run


def test_first_difference():
    assert first_difference([1, 2, 3], [1, 2, 3]) is None
    assert first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert first_difference([1, 2, 3], [1, 2]) == 2  # one stopped early: they part where it stopped


def test_only_a_tie_excuses_a_difference(tiny_engine):
    _, ar = run(tiny_engine, prompt="x = ", mode="ar", max_new_tokens=8, heal=False)
    ids, prompt = ar.token_ids, ar.prompt_token_ids
    assert parted_at_tie(tiny_engine, prompt, ids, list(ids))
    tiny_engine.runner.crop(0)
    runner_up = tiny_engine.runner.extend(prompt + ids[:3]).topk(2).indices[1].item()
    other = ids[:3] + [runner_up] + ids[4:]
    assert not parted_at_tie(tiny_engine, prompt, ids, other, tol=1e-5)  # AR clearly preferred its token
    assert parted_at_tie(tiny_engine, prompt, ids, other, tol=1e9)
