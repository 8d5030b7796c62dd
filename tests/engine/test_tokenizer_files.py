"""`TokenizerFiles` (tokenizer.json without transformers) gives the ids transformers gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.loading import checkpoint as loading
from engine.prompts.tokenizer import Tokenizer, TokenizerFiles

DEMO = loading.DEMO_DIR
TEXTS = [
    "def add(a, b):\n    return a + b\n",
    "x = '<fim_prefix></s><s>'  # spelled, not special",
    "é 日本語 🙂\t\r\n",
    "    ",
    "",
    "\x00\x7f",
]


def both(path: Path) -> tuple[Tokenizer, Tokenizer]:
    from transformers import AutoTokenizer, PreTrainedConfig

    files = TokenizerFiles.load(path)
    assert files is not None
    return Tokenizer(files, mask_id=4), Tokenizer(
        AutoTokenizer.from_pretrained(path, config=PreTrainedConfig()), mask_id=4
    )


@pytest.mark.parametrize("which", ["demo", "tiny"])
def test_the_same_ids_as_transformers(which, tiny_checkpoint):
    ours, hf = both(DEMO if which == "demo" else tiny_checkpoint)
    for text in TEXTS:
        assert ours.encode(text) == hf.encode(text)
        assert ours.decode(ours.encode(text)) == hf.decode(hf.encode(text))
    assert ours.template_prefix == hf.template_prefix == [ours.bos_id]
    assert (ours.bos_id, ours.eos_id) == (hf.bos_id, hf.eos_id)
    assert ours.special_ids == hf.special_ids
    for token in ("<fim_prefix>", "<fim_middle>", "<|mask|>", "not a token", "def"):
        assert ours.token_id(token) == hf.token_id(token)
    assert ours.token_texts == hf.token_texts
    for attr in ("bos_token_id", "eos_token_id", "unk_token_id", "pad_token_id", "mask_token_id"):
        assert getattr(ours.hf, attr) == getattr(hf.hf, attr)
    assert len(ours.hf) == len(hf.hf)


def test_only_a_config_that_runs_tokenizer_json_as_it_is(tmp_path):
    for name, change in [
        ("llama", {"tokenizer_class": "LlamaTokenizerFast"}),
        ("bos", {"add_bos_token": False}),
    ]:
        path = tmp_path / name
        shutil.copytree(DEMO, path, ignore=shutil.ignore_patterns("*.safetensors", "linear_spec_lora"))
        config = json.loads((path / "tokenizer_config.json").read_text())
        (path / "tokenizer_config.json").write_text(json.dumps(config | change))
        assert TokenizerFiles.load(path) is None  # transformers loads these
    assert TokenizerFiles.load(tmp_path) is None  # no files at all


def test_special_tokens_named_by_role_or_spelled_out(tmp_path):
    """tokenizer_config.json may list extra special tokens, name them by role, or spell a token as a dict."""
    path = tmp_path / "tok"
    shutil.copytree(DEMO, path, ignore=shutil.ignore_patterns("*.safetensors", "linear_spec_lora"))
    config = json.loads((path / "tokenizer_config.json").read_text())
    listed = TokenizerFiles.load(path).all_special_ids
    extra = {f"t{i}": t for i, t in enumerate(config["extra_special_tokens"])}
    config |= {"extra_special_tokens": extra, "eos_token": {"content": config["eos_token"], "special": True}}
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    named = TokenizerFiles.load(path)
    assert named.all_special_ids == listed and named.eos_token_id == 2
