"""Random checkpoints: a tiny one is small, fast and self-consistent; the streaming writer emits valid safetensors."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoTokenizer

from engine.loading import random_checkpoint
from engine.loading.random_checkpoint import write_random_checkpoint
from engine.model.config import ModelConfig, preset
from engine.model.network import NLDModel


def _expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {n: tuple(p.shape) for n, p in NLDModel(cfg).named_parameters()}


def test_tiny_is_small_fast_and_consistent(tiny_checkpoint: Path, tmp_path: Path) -> None:
    start = time.perf_counter()
    write_random_checkpoint(tmp_path, "tiny")
    assert time.perf_counter() - start < 1.0
    assert sum(f.stat().st_size for f in tmp_path.iterdir()) < 1_000_000

    cfg = json.loads((tiny_checkpoint / "config.json").read_text())
    assert cfg["model_type"] == "nemotron_labs_diffusion"
    assert cfg["architectures"] == ["NemotronLabsDiffusionModel"]
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    assert len(tok) <= cfg["vocab_size"] == 512
    ids = (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.mask_token_id)
    assert ids == (cfg["bos_token_id"], cfg["eos_token_id"], cfg["pad_token_id"], cfg["mask_token_id"])
    tiny = preset("tiny")
    assert ids == (tiny.bos_token_id, tiny.eos_token_id, tiny.pad_token_id, tiny.mask_token_id)

    with safe_open(tiny_checkpoint / "model.safetensors", framework="pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        assert shapes == _expected_shapes(tiny)
        assert f.get_tensor("encoder.embed_tokens.weight").dtype == torch.bfloat16
        assert torch.equal(f.get_tensor("encoder.norm.weight"), torch.ones(64, dtype=torch.bfloat16))
        assert f.get_tensor("diffusion_head.weight").float().std() > 0.05  # logits are not flat


def test_seed_decides_the_weights(tiny_checkpoint: Path, tmp_path: Path) -> None:
    same, other = (
        write_random_checkpoint(tmp_path / "a", seed=0),
        write_random_checkpoint(tmp_path / "b", seed=1),
    )
    original = (tiny_checkpoint / "model.safetensors").read_bytes()
    assert (same / "model.safetensors").read_bytes() == original
    assert (other / "model.safetensors").read_bytes() != original


def test_streaming_writer_chunks_a_custom_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random_checkpoint, "_CHUNK_ELEMENTS", 1000)  # many chunks per matrix
    cfg = dataclasses.replace(
        preset("tiny"), vocab_size=700, hidden_size=48, intermediate_size=80, num_hidden_layers=3, head_dim=12
    )
    calls: list[tuple[int, int, str]] = []
    out = write_random_checkpoint(tmp_path, cfg, progress=lambda *a: calls.append(a))
    expected = _expected_shapes(cfg)
    assert [c[:2] for c in calls] == [(i, len(expected)) for i in range(1, len(expected) + 1)]
    with safe_open(out / "model.safetensors", framework="pt") as f:
        assert {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()} == expected
        embed = f.get_tensor("encoder.embed_tokens.weight").float()
        assert embed.shape == (700, 48) and 0.1 < embed.std() < 0.2 and embed[-1].abs().sum() > 0


def test_vocab_smaller_than_the_tokenizer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vocab_size 100"):
        write_random_checkpoint(tmp_path, dataclasses.replace(preset("tiny"), vocab_size=100))
