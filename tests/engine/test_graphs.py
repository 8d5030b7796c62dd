"""The static passes CUDA graphs capture (engine/decoding/graphs.py), run uncaptured on a CPU: the same
hidden states and staged K/V as the eager pass, over a fixed window of the cache."""

from __future__ import annotations

import pytest
import torch

from engine.decoding import graphs
from engine.decoding.graphs import MIN_BUCKET, StaticPasses, bucket_for, window_mask
from engine.model.masks import MaskBook
from engine.decoding.modes.self_spec import quadratic_mask
from kernels.ops import Pattern


def test_buckets_are_powers_of_two_from_the_minimum_up_to_the_room():
    assert bucket_for(1, 4096) == MIN_BUCKET
    assert bucket_for(MIN_BUCKET + 1, 4096) == 2 * MIN_BUCKET
    assert bucket_for(1024, 4096) == 1024
    assert bucket_for(3000, 3100) == 3100  # capped: the window never passes the cache's end
    with pytest.raises(ValueError, match="context full"):
        bucket_for(3101, 3100)


@pytest.mark.parametrize(
    "pattern,width",
    [(Pattern.CAUSAL, 1), (Pattern.CAUSAL, 4), (Pattern.BIDIRECTIONAL, 4), (Pattern.MASK, 12)],
)
def test_window_mask_is_the_pass_mask_then_hidden_keys(pattern, width):
    length, bucket = 9, 32
    chunk = quadratic_mask(3) if pattern is Pattern.MASK else None
    got = window_mask(pattern, torch.tensor(length), width, bucket, chunk)
    want = MaskBook(64, torch.device("cpu")).full(pattern, width, length, chunk)
    want = torch.ones(width, length + width, dtype=torch.bool) if want is None else want
    assert got.shape[-1] == bucket and torch.equal(got.expand(width, bucket)[:, : length + width], want)
    assert not got[:, length + width :].any()


def test_static_passes_match_the_eager_passes(tiny_engine):
    runner, model = tiny_engine.runner, tiny_engine.model
    mask_id, block = tiny_engine.tokenizer.mask_id, 3
    runner.crop(0)
    runner.extend(tiny_engine.tokenizer.encode("def forward(self, x):\n"))
    static = StaticPasses(model, runner.cache, capture=False)
    static.use_block(block)
    quad = [7, mask_id, mask_id, mask_id] * block
    positions = (
        runner.length
        + torch.arange(block).repeat_interleave(block + 1)
        + torch.arange(block + 1).repeat(block)
    )
    lora = torch.tensor([i % (block + 1) != 0 for i in range(len(quad))])
    calls = [
        ([5], Pattern.CAUSAL, None, None, False),
        ([5, mask_id, mask_id], Pattern.BIDIRECTIONAL, None, None, False),
        ([5, mask_id, mask_id], Pattern.BIDIRECTIONAL, None, None, True),
        ([5, 6, 7], Pattern.CAUSAL, None, None, False),
        (quad, Pattern.MASK, positions, quadratic_mask(block), lora),
    ]
    cache = runner.cache
    for tokens, pattern, pos, mask, lo in calls:
        n, length = len(tokens), runner.length
        want = runner.forward(tokens, pattern, pos, mask, lo).clone()
        want_k = cache.k[:, :, :, length : length + n].clone()
        cache.k[:, :, :, length:].zero_()
        key = static.key(n, length, pattern, pos, lo)
        got = static.run(key, torch.tensor(tokens), length, pos, mask, lo)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cache.k[:, :, :, length : length + n], want_k, atol=1e-5, rtol=1e-5)
        assert runner.length == length  # staged only
    assert static.key(5, runner.length, Pattern.CAUSAL, None, False) is None  # a prompt chunk: eager


def test_a_failed_capture_is_one_logged_line_and_every_pass_then_runs_eagerly(tiny_engine, monkeypatch):
    runner = tiny_engine.runner
    assert runner.static is None and runner.graph_note is None  # a CPU runner never captures
    runner.crop(0)
    runner.extend(tiny_engine.tokenizer.encode("import os\n"))
    static = StaticPasses(tiny_engine.model, runner.cache, capture=True)  # no CUDA here: capture fails
    key = static.key(1, runner.length, Pattern.CAUSAL, None, False)
    logged = []
    monkeypatch.setattr(
        graphs.log, "warning", logged.append
    )  # (a logging config elsewhere may mute the logger)
    assert static.run(key, torch.tensor([5]), runner.length, None, None, False) is None
    assert len(logged) == 1 and "\n" not in logged[0]
    assert static.failed.startswith("CUDA graphs off, passes run eagerly: capture failed")
    assert static.key(1, runner.length, Pattern.CAUSAL, None, False) is None
