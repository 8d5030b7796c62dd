"""The scripted one-token CPU pass (engine/model/decode_step.py) equals the eager pass bit for bit,
and the runner takes it for AR tokens only where it applies."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from engine.model.config import preset
from engine.model.decode_step import DecodeStep
from engine.model.network import NLDModel
from kernels.ops import Pattern


def random_model(dtype: torch.dtype, kv_heads: int) -> NLDModel:
    """The tiny preset with random norm weights (ones would hide a missing multiply), whose query
    scale differs from 1 after position 16 (not only past 16,384 tokens)."""
    torch.manual_seed(0)
    cfg = preset("tiny")
    rope = dict(cfg.rope_parameters, original_max_position_embeddings=16)
    cfg = dataclasses.replace(cfg, num_key_value_heads=kv_heads, rope_parameters=rope)
    model = NLDModel(cfg)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            torch.nn.init.normal_(p, 1.0, 0.2)
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


class Spy:
    """Stands for the scripted pass and records the tokens it is called with."""

    def __init__(self, scripted):
        self.scripted, self.tokens = scripted, []

    def forward(self, token, *rest):
        self.tokens.append(token)
        return self.scripted.forward(token, *rest)


def test_ar_runs_the_step_and_writes_what_the_eager_passes_write(tiny_engine, monkeypatch):
    runner = tiny_engine.runner
    ids = tiny_engine.tokenizer.encode("def forward(self, x):\n    return x\n")
    spy = Spy(runner.step.scripted)
    monkeypatch.setattr(runner.step, "scripted", spy)
    runner.crop(0)
    scripted = [runner.extend(ids[:3])] + [runner.extend([t]) for t in ids[3:]]
    k, v = runner.cache.k[:, :, :, : runner.length].clone(), runner.cache.v[:, :, :, : runner.length].clone()
    assert spy.tokens == ids[3:]  # one-token causal passes only: the 3-token prompt ran eagerly
    monkeypatch.setattr(runner, "step", None)
    runner.crop(0)
    eager = [runner.extend(ids[:3])] + [runner.extend([t]) for t in ids[3:]]
    assert all(torch.equal(a, b) for a, b in zip(scripted, eager))
    assert torch.equal(k, runner.cache.k[:, :, :, : runner.length])
    assert torch.equal(v, runner.cache.v[:, :, :, : runner.length])


def test_other_one_token_passes_stay_eager(tiny_engine, monkeypatch):
    runner = tiny_engine.runner
    monkeypatch.setattr(runner.step, "scripted", None)  # a call would fail
    runner.crop(0)
    runner.extend([5, 6])
    runner.forward([7], Pattern.BIDIRECTIONAL)
    runner.forward([7], Pattern.CAUSAL, positions=torch.tensor([9]))
    runner.forward([7], Pattern.CAUSAL, lora=True)


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
