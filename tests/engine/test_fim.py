"""FIM formats and the context budget."""

from __future__ import annotations

import json
import shutil

import pytest
from tokenizers import Tokenizer as RawTokenizer
from tokenizers import decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

import engine
from engine.prompts import fim
from engine.prompts.tokenizer import Tokenizer
from tests.engine.util import run


def vocab_tokenizer(specials: list[str]) -> Tokenizer:
    """A byte-level tokenizer with no merges plus the given special tokens."""
    raw = RawTokenizer(
        models.BPE(vocab={c: i for i, c in enumerate(pre_tokenizers.ByteLevel.alphabet())}, merges=[])
    )
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    return Tokenizer(
        PreTrainedTokenizerFast(tokenizer_object=raw, additional_special_tokens=specials, eos_token="</s>")
    )


@pytest.mark.parametrize(
    "name,specials",
    [
        ("qwen2.5-coder", ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>"]),
        ("starcoder", ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]),
        ("deepseek-coder", ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"]),
        ("codellama", ["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"]),
    ],
)
def test_formats_are_detected_from_the_vocabulary(name, specials):
    tok = vocab_tokenizer(specials)
    fmt = fim.detect(tok)
    assert fmt is not None and fmt.name == name
    ids = fmt.ids(tok, "a = ", "\n")
    assert ids[0] == tok.token_id(fmt.prefix) and ids[-1] == tok.token_id(fmt.middle)
    assert tok.token_id(fmt.suffix) in ids


def test_spm_order_puts_the_suffix_first():
    tok = vocab_tokenizer(["<fim_prefix>", "<fim_suffix>", "<fim_middle>"])
    pre, suf, mid = (tok.token_id(t) for t in ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"))
    p, s = tok.encode("a = "), tok.encode("\n")
    assert fim.detect(tok).ids(tok, "a = ", "\n") == tok.template_prefix + [pre, *p, suf, *s, mid]
    assert fim.detect(tok, spm=True).ids(tok, "a = ", "\n") == tok.template_prefix + [suf, *s, pre, *p, mid]


@pytest.mark.parametrize("order", ["psm", "spm"])
def test_the_checkpoint_config_chooses_the_fim_order(tiny_checkpoint, tmp_path, order):
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "c")
    config = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps(config | {"fim_order": order}))
    eng = engine.load(str(ckpt), device="cpu")
    done = run(eng, prefix="a = ", suffix="\n", max_new_tokens=4)[1]
    first = eng.tokenizer.token_id("<fim_suffix>" if order == "spm" else "<fim_prefix>")
    assert done.prompt_token_ids[len(eng.tokenizer.template_prefix)] == first
    assert done.n_tokens > 0


def test_no_fim_tokens_means_no_format():
    assert fim.detect(vocab_tokenizer([])) is None


def test_user_text_cannot_inject_fim_markers(tiny_engine):
    tok = tiny_engine.tokenizer
    ids = tok.encode("x = '<fim_middle>'")
    assert tok.token_id("<fim_middle>") not in ids


def test_fit_keeps_text_near_the_cursor(tiny_engine):
    tok = tiny_engine.tokenizer
    prefix = "".join(f"line_{i} = {i}\n" for i in range(200)) + "result = "
    suffix = "\n" + "".join(f"after_{i} = {i}\n" for i in range(200))
    p, s = fim.fit(tok, prefix, suffix, 120)
    assert prefix.endswith(p) and suffix.startswith(s)
    assert p.endswith("result = ") and s.startswith("\nafter_0")
    assert len(tok.encode(p)) + len(tok.encode(s)) <= 120
    assert len(tok.encode(p)) > 2 * len(tok.encode(s))  # about 3:1
    assert p.startswith("line_")  # cut at a line boundary


def test_fit_leaves_short_context_alone(tiny_engine):
    assert fim.fit(tiny_engine.tokenizer, "a = ", "\n", 100) == ("a = ", "\n")


def test_long_prompts_are_trimmed_to_the_context_window(tiny_engine, monkeypatch):
    monkeypatch.setattr(tiny_engine.model_config, "max_position_embeddings", 64)
    events, done = run(tiny_engine, prompt="x = 1\n" * 100, mode="ar", max_new_tokens=8)
    assert len(done.prompt_token_ids) + 8 <= 64
    assert any("truncated" in n for n in done.notes) and done.truncated
    _, done = run(tiny_engine, prefix="x = 1\n" * 100, suffix="y = 2\n" * 100, mode="ar", max_new_tokens=8)
    assert len(done.prompt_token_ids) + 8 <= 64 and done.truncated
    _, done = run(tiny_engine, prefix="x = 1\n", suffix="y = 2\n", mode="ar", max_new_tokens=8)
    assert not done.truncated and not done.notes


def test_the_fim_budget_counts_each_formats_own_tokens(tiny_engine):
    """The window holds the prompt the format builds, whatever the format adds (CodeLlama: spaces)."""
    tok = tiny_engine.tokenizer
    prefix, suffix = "x = 1\n" * 100, "y = 2\n" * 100
    for fmt in (*fim.FORMATS[:1], fim.replace(fim.FORMATS[0], spaced=True)):
        budget = 64
        p, s = fim.fit(tok, prefix, suffix, budget - fmt.overhead(tok))
        assert len(fmt.ids(tok, p, s)) <= budget


@pytest.mark.parametrize("mode", ["ar", "diffusion", "self-spec"])
def test_a_plain_completion_ends_at_a_fim_control_token(tiny_engine, monkeypatch, mode):
    """A FIM-trained model may open a FIM example mid-completion: that ends a plain completion,
    as it ends a FIM one, instead of printing "<fim_suffix>"."""
    runner, fim_suffix = tiny_engine.runner, tiny_engine.tokenizer.token_id("<fim_suffix>")
    logits = runner.logits

    def favour_fim_suffix(hidden):
        out = logits(hidden).clone()
        out[..., fim_suffix] += 1e4
        return out

    monkeypatch.setattr(runner, "logits", favour_fim_suffix)
    done = run(tiny_engine, prompt="import os\n", mode=mode, max_new_tokens=16)[1]
    assert "<fim" not in done.text and fim_suffix not in done.token_ids and done.stop_reason == "eos"


def chunks(n: int, lines: int = 6) -> list:
    from engine.request import ContextChunk

    return [ContextChunk(f"f{i}.py", "".join(f"v{i}_{j} = {j}\n" for j in range(lines))) for i in range(n)]


def test_context_chunks_come_first_then_prefix_then_suffix(tiny_engine):
    """llama.cpp's repo-level layout: `<file_sep>name\\ntext` per chunk, then the FIM prompt."""
    from engine import GenerationConfig, Request

    tok, context = tiny_engine.tokenizer, chunks(2)
    request = Request(
        prefix="a = ",
        suffix="\nb = 2\n",
        context=context,
        config=GenerationConfig(mode="ar", max_new_tokens=2, heal=False),
    )
    done = tiny_engine.complete(request)
    files = "".join(f"<file_sep>{c.filename}\n{c.text}" for c in context)
    assert (
        tok.decode(done.prompt_token_ids)
        == tok.decode(tok.template_prefix) + files + "<fim_prefix>a = <fim_suffix>\nb = 2\n<fim_middle>"
    )
    assert done.context_chunks == 2 and not done.truncated
    assert done.context_tokens == sum(len(fim.chunk_ids(tok, tiny_engine.fim_format, c)) for c in context)


def test_context_chunks_get_their_share_and_the_oldest_are_left_out(tiny_engine, monkeypatch):
    monkeypatch.setattr(tiny_engine.model_config, "max_position_embeddings", 256)
    from engine import GenerationConfig, Request

    tok, context = tiny_engine.tokenizer, chunks(8)
    prefix = "".join(f"line_{i} = {i}\n" for i in range(300))  # far more than the window
    request = Request(
        prefix=prefix, suffix="\n", context=context, config=GenerationConfig(mode="ar", max_new_tokens=128)
    )
    done = tiny_engine.complete(request)
    room = 128 - tiny_engine.fim_format.overhead(tok)
    kept = [fim.chunk_ids(tok, tiny_engine.fim_format, c) for c in context]
    n = done.context_chunks
    assert 0 < n < len(context) and done.truncated
    assert done.context_tokens == sum(map(len, kept[-n:])) <= room * fim.CONTEXT_SHARE
    assert (
        done.context_tokens + len(kept[-n - 1]) > room * fim.CONTEXT_SHARE
    )  # the next older one did not fit
    text = tok.decode(done.prompt_token_ids)
    assert context[-1].text in text and context[-n].text in text and context[-n - 1].filename not in text
    assert any("context chunks (the oldest) left out" in note for note in done.notes)
    assert len(done.prompt_token_ids) <= 128  # the local text got the rest: the prefix was trimmed to fit


def test_the_chunks_kept_do_not_depend_on_the_local_text(tiny_engine, monkeypatch):
    """A warm-up with only the chunks and the completion that follows start with the same tokens."""
    monkeypatch.setattr(tiny_engine.model_config, "max_position_embeddings", 256)
    from engine import GenerationConfig, Request

    config = GenerationConfig(mode="ar", max_new_tokens=128)  # not auto: it would learn from these
    warm = tiny_engine.complete(Request(prefix="", suffix="", context=chunks(8), config=config))
    full = tiny_engine.complete(
        Request(prefix="x = 1\n" * 300, suffix="\n", context=chunks(8), config=config)
    )
    start = len(tiny_engine.tokenizer.template_prefix) + warm.context_tokens
    assert (
        warm.context_chunks == full.context_chunks
        and warm.prompt_token_ids[:start] == full.prompt_token_ids[:start]
    )
    assert full.tokens_cached >= start
