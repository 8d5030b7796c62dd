"""The exact KV cache: incremental equals recomputed, read-only passes, crop and re-append."""

from __future__ import annotations

import torch

from kernels.ops import Pattern


def snapshot(runner):
    n = runner.length
    return runner.cache.k[:, :, :, :n].clone(), runner.cache.v[:, :, :, :n].clone()


def test_cached_generation_equals_recompute(tiny_engine):
    runner = tiny_engine.runner
    ids = tiny_engine.tokenizer.encode("def forward(self, x):\n    return self.layer(x)\n")
    runner.crop(0)
    incremental = [runner.extend(ids[:5])]
    incremental += [runner.extend([t]) for t in ids[5:]]
    runner.crop(0)
    hidden = runner.forward(ids, Pattern.CAUSAL)
    full = runner.logits(hidden)
    for i, logits in enumerate(incremental):
        torch.testing.assert_close(logits[:-1], full[4 + i][:-1], atol=1e-5, rtol=1e-5)


def test_a_long_prompt_is_prefilled_in_chunks_with_the_same_result(tiny_engine, monkeypatch):
    """Chunks bound the causal mask (a 262k-token prompt in one pass would need 68 GB for it)."""
    from engine.decoding import runner as runner_module

    runner = tiny_engine.runner
    ids = tiny_engine.tokenizer.encode("def forward(self, x):\n    return self.layer(x) + self.bias\n")
    runner.crop(0)
    whole = runner.extend(ids)
    k, v = snapshot(runner)
    seen = []
    forward = runner._pass
    monkeypatch.setattr(runner_module, "PREFILL_CHUNK", 4)
    monkeypatch.setattr(
        runner, "_pass", lambda tokens, *a, **kw: (seen.append(len(tokens)), forward(tokens, *a, **kw))[1]
    )
    runner.crop(0)
    chunked = runner.extend(ids)
    assert max(seen) == 4 and sum(seen) == len(ids) == runner.length
    torch.testing.assert_close(chunked[:-1], whole[:-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(snapshot(runner)[0], k, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(snapshot(runner)[1], v, atol=1e-5, rtol=1e-5)


def test_read_only_pass_leaves_cache_unchanged(tiny_engine):
    runner = tiny_engine.runner
    runner.crop(0)
    runner.extend(tiny_engine.tokenizer.encode("import sys\n"))
    before, length = snapshot(runner), runner.length
    mask_id = tiny_engine.tokenizer.mask_id
    runner.forward([5, mask_id, mask_id, mask_id], Pattern.BIDIRECTIONAL)
    runner.forward([5, 6, 7], Pattern.CAUSAL)  # staged, never kept
    assert runner.length == length
    after = snapshot(runner)
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])


def test_crop_then_reappend_equals_never_appended(tiny_engine):
    runner, tok = tiny_engine.runner, tiny_engine.tokenizer
    a, b, c = tok.encode("x = 1\n"), tok.encode("y = 2\n"), tok.encode("z = 3\n")
    runner.crop(0)
    runner.extend(a + c)
    direct = snapshot(runner)
    runner.crop(0)
    runner.extend(a)
    runner.extend(b)
    runner.crop(len(a))
    runner.extend(c)
    again = snapshot(runner)
    torch.testing.assert_close(again[0], direct[0], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(again[1], direct[1], atol=1e-6, rtol=1e-6)


def test_prompt_prefix_is_reused(tiny_engine):
    from tests.engine.util import run

    run(tiny_engine, prompt="def a():\n    return 1\n\ndef b", mode="ar", max_new_tokens=3, heal=False)
    _, done = run(
        tiny_engine, prompt="def a():\n    return 1\n\ndef c", mode="ar", max_new_tokens=3, heal=False
    )
    assert done.tokens_cached > 5


def test_no_pass_reads_an_unwritten_slot(tiny_checkpoint):
    """A CPU cache is allocated without zeroing: every mode must read only slots it wrote. With the
    spare slots full of NaN, each mode writes the same tokens as on a zeroed cache."""
    import engine
    from engine import GenerationConfig, Request

    eng = engine.load(str(tiny_checkpoint), device="cpu")
    request = dict(prefix="def f(x):\n    return ", suffix="\n\nprint(f(2))\n")
    modes = [
        dict(mode="ar"),
        dict(mode="diffusion", block_size=8),
        dict(mode="self-spec", speculation="linear", block_size=8),
        dict(mode="self-spec", speculation="quadratic", block_size=4),
    ]
    outputs = {}
    for fill in (0.0, float("nan")):
        for i, config in enumerate(modes):
            eng.runner.crop(0)
            eng.runner.cache.k.fill_(fill)
            eng.runner.cache.v.fill_(fill)
            done = eng.complete(Request(config=GenerationConfig(max_new_tokens=20, **config), **request))
            outputs.setdefault(i, []).append(done.token_ids)
    assert all(zeroed == poisoned for zeroed, poisoned in outputs.values())
