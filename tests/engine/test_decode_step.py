"""The scripted CPU pass (engine/model/decode_step.py) of one token or a causal or bidirectional
chunk equals the eager pass bit for bit, and the runner takes it only where it applies."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from engine.model.config import preset
from engine.model.decode_step import MAX_WIDTH, DecodeStep
from engine.model.masks import MaskBook
from engine.model.network import LoRA, NLDModel
from kernels.ops import Pattern


def random_model(dtype: torch.dtype, kv_heads: int, adapter: bool = False) -> NLDModel:
    """The tiny preset with random norm weights (ones would hide a missing multiply), whose query
    scale differs from 1 after position 16 (not only past 16,384 tokens); with `adapter`, a random
    draft adapter on o_proj (merged into `o_draft` by `fuse_projections`)."""
    torch.manual_seed(0)
    cfg = preset("tiny")
    rope = dict(cfg.rope_parameters, original_max_position_embeddings=16)
    cfg = dataclasses.replace(cfg, num_key_value_heads=kv_heads, rope_parameters=rope)
    model = NLDModel(cfg)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            torch.nn.init.normal_(p, 1.0, 0.2)
    if adapter:
        for layer in model.encoder.layers:
            o = layer.self_attn.o_proj
            layer.self_attn.o_lora = LoRA(o.in_features, o.out_features, 4, 0.5)
    model = model.to(dtype).eval().requires_grad_(False)
    model.fuse_projections()
    return model


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kv_heads", [2, 4])  # grouped query heads, and one KV head per query head
def test_the_step_equals_the_eager_pass_bit_for_bit(dtype, kv_heads):
    model = random_model(dtype, kv_heads)
    step = DecodeStep.build(model)
    assert step is not None
    cache = model.new_cache(64)
    with torch.inference_mode():
        for tok in torch.randint(0, model.config.vocab_size, (24,)).tolist():
            n = cache.length
            hidden = step(tok, cache)
            k, v = cache.k[:, :, :, n].clone(), cache.v[:, :, :, n].clone()
            cache.k[:, :, :, n] = 0
            cache.v[:, :, :, n] = 0
            eager = model(torch.tensor([[tok]]), n, cache)[0]
            assert hidden.dtype == dtype and torch.equal(hidden, eager)
            assert torch.equal(k, cache.k[:, :, :, n]) and torch.equal(v, cache.v[:, :, :, n])
            assert cache.length == n  # staged, not committed
            cache.commit(1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kv_heads", [2, 4])
@pytest.mark.parametrize(
    "pattern, draft", [(Pattern.CAUSAL, False), (Pattern.BIDIRECTIONAL, False), (Pattern.BIDIRECTIONAL, True)]
)
def test_a_chunk_equals_the_eager_pass_bit_for_bit(dtype, kv_heads, pattern, draft):
    """Chunks of 8 and 5 tokens after 0-21 cached ones (the query scale differs from 1 past 16),
    with the mask the runner builds for the eager pass (`MaskBook`); `draft`: the adapter's pass."""
    model = random_model(dtype, kv_heads, adapter=draft)
    step = DecodeStep.build(model)
    assert step.drafts
    cache = model.new_cache(64)
    masks = MaskBook(cache.k.shape[3], torch.device("cpu"))
    with torch.inference_mode():
        for t in [8, 5, 8]:
            n = cache.length
            ids = torch.randint(0, model.config.vocab_size, (t,))
            mask = masks.full(pattern, t, n)
            hidden = step.chunk(ids, cache, mask, draft)
            k, v = cache.k[:, :, :, n : n + t].clone(), cache.v[:, :, :, n : n + t].clone()
            cache.k[:, :, :, n : n + t] = 0
            cache.v[:, :, :, n : n + t] = 0
            eager = model(ids[None], n, cache, Pattern.MASK if mask is not None else pattern, mask, draft)[0]
            assert hidden.shape == (t, model.config.hidden_size) and hidden.dtype == dtype
            assert torch.equal(hidden, eager)
            assert torch.equal(k, cache.k[:, :, :, n : n + t]) and torch.equal(v, cache.v[:, :, :, n : n + t])
            if draft:  # the adapter counts (this pass rewrites the staged K/V, as the next one will)
                assert not torch.equal(eager, model(ids[None], n, cache, pattern)[0])
            assert cache.length == n  # staged, not committed
            cache.commit(t)


class Spy:
    """Stands for the scripted pass and records the tokens each of its methods is called with."""

    def __init__(self, scripted):
        self.scripted, self.tokens, self.chunks = scripted, [], []

    def forward(self, token, *rest):
        self.tokens.append(token)
        return self.scripted.forward(token, *rest)

    def chunk(self, ids, *rest):
        self.chunks.append(ids.tolist())
        return self.scripted.chunk(ids, *rest)


def test_ar_runs_the_step_and_writes_what_the_eager_passes_write(tiny_engine, monkeypatch):
    runner = tiny_engine.runner
    ids = tiny_engine.tokenizer.encode("def forward(self, x):\n    return x\n")
    spy = Spy(runner.step.scripted)
    monkeypatch.setattr(runner.step, "scripted", spy)
    runner.crop(0)
    scripted = [runner.extend(ids[:3])] + [runner.extend([t]) for t in ids[3:]]
    k, v = runner.cache.k[:, :, :, : runner.length].clone(), runner.cache.v[:, :, :, : runner.length].clone()
    assert spy.chunks == [ids[:3]] and spy.tokens == ids[3:]  # the prompt as a chunk, then one token a pass
    monkeypatch.setattr(runner, "step", None)
    runner.crop(0)
    eager = [runner.extend(ids[:3])] + [runner.extend([t]) for t in ids[3:]]
    assert all(torch.equal(a, b) for a, b in zip(scripted, eager))
    assert torch.equal(k, runner.cache.k[:, :, :, : runner.length])
    assert torch.equal(v, runner.cache.v[:, :, :, : runner.length])


def test_the_modes_chunks_run_scripted_with_the_eager_passes_results(tiny_engine, monkeypatch):
    """A diffusion step (bidirectional), a draft pass (bidirectional, the adapter on) and a verify
    pass (causal) through the runner."""
    runner = tiny_engine.runner
    spy = Spy(runner.step.scripted)
    monkeypatch.setattr(runner.step, "scripted", spy)
    block = [5, 9, 9, 9, 9, 9, 9, 9]
    results = []
    for step in (runner.step, None):
        monkeypatch.setattr(runner, "step", step)
        runner.crop(0)
        runner.extend([3, 4, 6])
        passes = [(Pattern.BIDIRECTIONAL, False), (Pattern.BIDIRECTIONAL, True), (Pattern.CAUSAL, False)]
        results.append([runner.forward(block, pattern, lora=lora).clone() for pattern, lora in passes])
    assert spy.chunks == [[3, 4, 6], block, block, block]
    assert all(torch.equal(a, b) for a, b in zip(*results))
    assert not torch.equal(results[0][0], results[0][2])


def test_other_passes_stay_eager(tiny_engine, monkeypatch):
    runner = tiny_engine.runner
    runner.crop(0)
    runner.extend([5, 6])
    monkeypatch.setattr(runner.step, "scripted", None)  # a call would fail
    runner.forward([7], Pattern.BIDIRECTIONAL)
    runner.forward([7], Pattern.CAUSAL, positions=torch.tensor([9]))
    runner.forward([7], Pattern.CAUSAL, lora=True)
    runner.forward([7, 8], Pattern.BIDIRECTIONAL, lora=torch.tensor([True, False]))  # per-token adapter
    runner.forward([7, 8], Pattern.CAUSAL, positions=torch.tensor([2, 2]))
    runner.forward([7, 8], Pattern.MASK, mask=torch.ones(2, 2, dtype=torch.bool).tril())
    runner.forward([7] * (MAX_WIDTH + 1), Pattern.CAUSAL)  # a prompt chunk wider than a mode's pass


def test_no_step_without_fused_float_weights_or_torchscript(monkeypatch, caplog):
    model = NLDModel(preset("tiny")).eval()
    assert DecodeStep.build(model) is None  # unfused: training's separate projections
    model.fuse_projections()

    def fail(*args, **kwargs):
        raise RuntimeError("TorchScript is gone")

    monkeypatch.setattr(torch.jit, "script", fail)
    with caplog.at_level(logging.WARNING, logger="nemodiff.engine"):
        assert DecodeStep.build(model) is None
    assert "TorchScript failed (TorchScript is gone)" in caplog.text
