"""The draft adapter: its input layout, that distillation moves the draft toward the AR model while
AR itself stays untouched, and that the saved adapter loads like NLD's own `linear_spec_lora/`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

import engine
from engine import GenerationConfig, Request
from engine.prompts.bpe import MASK, PAD
from engine.training.draft_lora import (
    DraftSettings,
    attach,
    distill_loss,
    draft_input,
    greedy_rollouts,
    lr_at,
    slot_weights,
    train_adapter,
)
from engine.training.export import load_export
from engine.training.trainer import train
from tests.training.util import TINY

DRAFT = DraftSettings(
    rank=8, alpha=16.0, lr=1e-2, warmup_steps=1, seq_len=TINY.seq_len, batch_size=2, blocks=(8,)
)


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory, sample_texts):
    return train(
        tmp_path_factory.mktemp("run"), max_steps=2, settings=TINY, texts=(sample_texts[:2], sample_texts[2:])
    )


def test_draft_input_is_first_token_then_masks_per_block():
    x0 = torch.arange(10, 26)[None]
    x0[0, -2:] = PAD
    tokens, masked = draft_input(x0, 8, MASK, PAD)
    assert tokens[0, :8].tolist() == [10] + [MASK] * 7
    assert tokens[0, 8:].tolist() == [18] + [MASK] * 5 + [PAD, PAD]
    assert masked.sum() == 12 and not masked[0, [0, 8, 14, 15]].any()


def test_prefix_weights_are_the_chance_the_earlier_slots_were_right():
    p = torch.tensor([[1.0, 0.8, 0.5, 0.1], [1.0, 0.2, 0.9, 0.3]])  # two blocks of 4 in one row
    w = slot_weights(-p.log().view(1, 8), 4, "prefix").view(2, 4)
    expected = torch.tensor([[1.0, 1.0, 0.8, 0.4], [1.0, 1.0, 0.2, 0.18]])
    assert torch.allclose(w, expected)
    assert torch.equal(slot_weights(-p.log().view(1, 8), 4, "uniform"), torch.ones(1, 8))


def test_learning_rate_warms_up_then_cools_down_over_the_budget():
    s = DraftSettings(lr=1.0, warmup_steps=10, cooldown=0.2)
    assert lr_at(0, s, None) == 0.1 and lr_at(500, s, None) == 1.0
    assert (
        lr_at(50, s, 100) == 1.0
        and lr_at(90, s, 100) == pytest.approx(0.5)
        and lr_at(99, s, 100) == pytest.approx(0.05)
    )


def test_rollouts_are_greedy_ar_continuations_of_every_block(tiny_export):
    model = load_export(tiny_export)
    x0 = torch.randint(9, TINY.vocab_size, (2, TINY.seq_len), generator=torch.Generator().manual_seed(1))
    roll = greedy_rollouts(model, x0, 8)
    for b in range(2):
        for start in range(0, TINY.seq_len, 8):
            seq = x0[b, : start + 1].tolist()
            for _ in range(7):
                logits = model.logits(model(torch.tensor([seq]), torch.arange(len(seq)))[0, -1])
                seq.append(int(logits.argmax()))
            assert roll[b, start : start + 8].tolist() == seq[start:], (b, start)


@pytest.mark.parametrize("weighting", ["prefix", "uniform"])
def test_distillation_lowers_the_loss_and_leaves_ar_alone(tiny_export, weighting):
    torch.manual_seed(0)
    model = load_export(tiny_export).requires_grad_(False)
    x0 = torch.randint(9, TINY.vocab_size, (2, TINY.seq_len))
    positions = torch.arange(TINY.seq_len)
    ar_before = model(x0, positions)
    params = attach(model, DRAFT)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=3e-2)
    losses = []
    for _ in range(30):
        loss = distill_loss(model, x0, 8, weighting)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.15, losses
    assert torch.equal(model(x0, positions), ar_before)  # the adapter is off in causal passes
    assert not torch.allclose(model(x0, positions, lora=True), ar_before)


def test_adapter_saves_resumes_and_loads_as_linear_spec_lora(tiny_export, sample_texts):
    out = train_adapter(tiny_export, max_steps=2, s=DRAFT, texts=sample_texts[:2])
    assert json.loads((out / "adapter_config.json").read_text())["nemodiff"]["trained_steps"] == 2
    # A resumed adapter keeps its own rank and alpha, whatever the settings say.
    train_adapter(
        tiny_export, max_steps=3, resume=True, s=replace(DRAFT, rank=4, alpha=4.0), texts=sample_texts[:2]
    )
    spec = json.loads((out / "adapter_config.json").read_text())
    assert spec["nemodiff"]["trained_steps"] == 3 and spec["target_modules"] == ["o_proj"]
    assert (spec["r"], spec["lora_alpha"]) == (DRAFT.rank, DRAFT.alpha)
    eng = engine.load(str(tiny_export))
    assert eng.lora_loaded
    outputs = {}
    for mode in ("ar", "self-spec"):
        done = eng.complete(
            Request(prompt="def f(x):\n", config=GenerationConfig(mode=mode, max_new_tokens=12))
        )
        outputs[mode] = done.token_ids
    assert outputs["self-spec"] == outputs["ar"]


def test_a_shipped_adapter_resumes_from_its_weights(tiny_export, sample_texts):
    out = train_adapter(tiny_export, max_steps=2, s=DRAFT, texts=sample_texts[:2])
    (out / "resume_state.pt").unlink()  # as shipped
    shipped = load_file(out / "adapter_model.safetensors")
    train_adapter(tiny_export, max_steps=2, resume=True, s=DRAFT, texts=sample_texts[:2])  # no step to take
    assert all(torch.equal(v, shipped[k]) for k, v in load_file(out / "adapter_model.safetensors").items())
    (out / "resume_state.pt").unlink()
    train_adapter(tiny_export, max_steps=3, resume=True, s=DRAFT, texts=sample_texts[:2])
    assert json.loads((out / "adapter_config.json").read_text())["nemodiff"]["trained_steps"] == 3
    assert not all(
        torch.equal(v, shipped[k]) for k, v in load_file(out / "adapter_model.safetensors").items()
    )
