import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from engine.errors import NemodiffError
from engine.evaluation import corpus
from engine.model.config import ModelConfig
from engine.model.network import NLDModel
from engine.prompts.bpe import BOS, EOS, MASK, PAD
from engine.training.schedule import lr_at, mixed_precision
from engine.training.trainer import train
from tests.training.util import TINY


def _state(run) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint" / "state.pt", weights_only=True)["model"]


def test_resume_continues_exactly(tmp_path, sample_texts):
    texts = (sample_texts[:2], sample_texts[2:])
    train(tmp_path / "straight", max_steps=4, settings=TINY, texts=texts)
    train(tmp_path / "split", max_steps=2, settings=TINY, texts=texts)
    train(tmp_path / "split", max_steps=4, resume=True, texts=texts)
    straight, split = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert straight.keys() == split.keys()
    for name in straight:
        assert torch.equal(straight[name], split[name]), name
    log = (tmp_path / "split" / "training_log.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in log if "loss" in json.loads(line)]
    assert steps == [1, 2, 3, 4]


def test_a_resume_refuses_another_corpus(tmp_path, sample_texts):
    """Its data position counts files of the corpus it started on: another one would silently
    change what it trains on (it did, once: a run started on a subset resumed on the full library)."""
    train(tmp_path, max_steps=1, settings=TINY, texts=(sample_texts[:2], sample_texts[2:]))
    with pytest.raises(NemodiffError, match="another corpus"):
        train(tmp_path, max_steps=2, resume=True, texts=(sample_texts[:1], sample_texts[2:]))
    train(tmp_path, max_steps=2, resume=True, texts=(sample_texts[:2], sample_texts[2:]))


def test_a_resume_reads_the_library_its_run_started_on(tmp_path, sample_texts):
    lib = tmp_path / "stdlib"
    (lib / "test").mkdir(parents=True)
    (lib / "test" / "__init__.py").write_text("")
    (lib / "mine.py").write_text(sample_texts[0])  # trained on
    (lib / "bisect.py").write_text(sample_texts[1])  # a held-out module
    train(tmp_path / "run", max_steps=1, settings=TINY, stdlib=lib)
    train(tmp_path / "run", max_steps=2, resume=True)  # not the interpreter's library: the run's
    with pytest.raises(NemodiffError, match="another corpus"):
        train(tmp_path / "run", max_steps=3, resume=True, stdlib=corpus.stdlib_root())


def test_export_is_an_nld_checkpoint(tmp_path, sample_texts):
    export = train(tmp_path / "run", max_steps=1, settings=TINY, texts=(sample_texts[:2], sample_texts[2:]))
    raw = json.loads((export / "config.json").read_text())
    assert raw["model_type"] == "nemotron_labs_diffusion" and raw["rope_parameters"]["rope_type"] == "yarn"
    cfg = ModelConfig.from_dict(raw)
    assert (cfg.mask_token_id, cfg.eos_token_id, cfg.bos_token_id, cfg.pad_token_id) == (MASK, EOS, BOS, PAD)
    assert (cfg.block_size, cfg.threshold, cfg.fim_order) == (8, 0.15, "spm")
    weights = load_file(export / "model.safetensors")
    model = NLDModel(cfg)
    assert set(weights) == set(model.state_dict())
    assert all(w.dtype == torch.bfloat16 for w in weights.values())
    model.load_state_dict(weights)
    tok = AutoTokenizer.from_pretrained(export)
    assert tok.mask_token_id == MASK and len(tok) == cfg.vocab_size
    assert (export / "training_log.jsonl").exists()


def test_a_run_is_never_overwritten_or_resumed_from_nothing(tmp_path, sample_texts):
    texts = (sample_texts[:2], sample_texts[2:])
    with pytest.raises(FileNotFoundError):
        train(tmp_path, max_steps=1, resume=True, settings=TINY, texts=texts)
    train(tmp_path, max_steps=1, settings=TINY, texts=texts)
    with pytest.raises(FileExistsError):
        train(tmp_path, max_steps=1, settings=TINY, texts=texts)


def test_warm_start_from_an_export(tmp_path, sample_texts):
    """A later session continues from the shipped model alone: same weights, same step count."""
    texts = (sample_texts[:2], sample_texts[2:])
    first = train(tmp_path / "first", max_steps=2, settings=TINY, texts=texts)
    again = train(tmp_path / "again", max_steps=2, settings=TINY, texts=texts, init_from=first)
    a, b = load_file(first / "model.safetensors"), load_file(again / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # no step ran: the weights came through unchanged
    more = train(tmp_path / "more", max_steps=3, settings=TINY, texts=texts, init_from=first, seed=1)
    steps = [
        json.loads(line)["step"]
        for line in (more / "training_log.jsonl").read_text().splitlines()
        if "loss" in json.loads(line)
    ]
    assert steps == [1, 2, 3]
    assert AutoTokenizer.from_pretrained(more).get_vocab() == AutoTokenizer.from_pretrained(first).get_vocab()


def test_cooldown_anneals_to_zero_stops_and_survives_a_resume(tmp_path, sample_texts):
    texts = (sample_texts[:2], sample_texts[2:])
    run = tmp_path / "run"
    train(run, max_steps=2, settings=TINY, texts=texts)
    train(run, resume=True, texts=texts, cooldown_steps=4, max_steps=4)  # interrupted halfway
    train(run, resume=True, texts=texts)  # continues the cooldown to its end, then stops
    records = [json.loads(line) for line in (run / "training_log.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr"] for r in records if "loss" in r}
    assert sorted(lrs) == [1, 2, 3, 4, 5, 6]
    assert lrs[3] == lr_at(2, TINY) and lrs[3] > lrs[4] > lrs[5] > lrs[6] > 0
    assert lrs[6] == lr_at(5, TINY) / 4  # step index 5 is the last of 4 steps from step 2
    assert lr_at(6, TINY, (2, 4)) == 0.0


def test_a_run_from_an_export_warms_up_again():
    """Fresh optimizer moments at step 5000 must not take the full rate at once."""
    settled = lr_at(5000, TINY)
    assert lr_at(5000, TINY, restart=5000) == settled / TINY.warmup_steps
    assert lr_at(5000 + TINY.warmup_steps - 1, TINY, restart=5000) == lr_at(
        5000 + TINY.warmup_steps - 1, TINY
    )


@pytest.mark.parametrize("native", [True, False])
def test_training_uses_bf16_only_where_the_cpu_has_it(monkeypatch, native):
    # An AVX2 CPU emulates bf16: autocast there made a training step ~25x slower than fp32.
    monkeypatch.setattr("engine.loading.checkpoint.cpu_has_bf16", lambda: native)
    a = torch.randn(4, 4)
    with mixed_precision(torch.device("cpu")):
        product = a @ a
    assert product.dtype == (torch.bfloat16 if native else torch.float32)
