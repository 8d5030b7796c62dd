"""Stop rules and UTF-8-safe streaming of the output side."""

from __future__ import annotations

from engine.decoding.sequence import Sequence
from engine.prompts.healing import HealConstraint
from engine.prompts.tokenizer import StreamDecoder


def seq_for(tok, **kw):
    args = dict(max_new_tokens=100, stop_ids={tok.eos_id}, stop=[])
    args.update(kw)
    return Sequence(tok, [tok.bos_id], **args)


def test_eos_ends_and_is_not_emitted(tiny_engine):
    tok = tiny_engine.tokenizer
    s = seq_for(tok)
    ids = tok.encode("x = 1")
    c = s.commit(ids + [tok.eos_id] + tok.encode("junk"))
    assert s.stop_reason == "eos" and s.out == ids and c.text == "x = 1"


def test_stop_string_split_across_commits_is_held_back(tiny_engine):
    tok = tiny_engine.tokenizer
    s = seq_for(tok, stop=["\n\n"])
    texts = [s.commit(tok.encode(part)) for part in ["a = 1\n", "\nb = 2"]]
    emitted = "".join(c.text for c in texts if c)
    assert emitted == "a = 1" and s.stop_reason == "stop"


def test_tokens_after_a_stop_string_are_not_output(tiny_engine):
    tok = tiny_engine.tokenizer
    s = seq_for(tok, stop=["\n"])
    line, rest = tok.encode("a = 1\n"), tok.encode("b = 2\nc = 3")
    c = s.commit(line + rest)  # a self-spec cycle can accept tokens past the end of a line
    assert c.text == "a = 1" and s.stop_reason == "stop" and s.out == line


def test_token_budget(tiny_engine):
    tok = tiny_engine.tokenizer
    s = seq_for(tok, max_new_tokens=3)
    s.commit(tok.encode("print(x, y, z)"))
    assert len(s.out) == 3 and s.stop_reason == "length"


def test_healed_characters_are_not_emitted(tiny_engine):
    tok = tiny_engine.tokenizer
    s = seq_for(tok, heal=HealConstraint(tok, "ret"))
    c = s.commit(tok.encode("return x"))
    assert c.text == "urn x"


def test_stream_decoder_never_splits_utf8(tiny_engine):
    tok = tiny_engine.tokenizer
    text = "naïve → 東京 🚀 done"
    ids = tok.encode(text)
    d = StreamDecoder(tok, [])
    out = "".join(d.push([i]) for i in ids) + d.flush()
    assert out == text
    assert "\ufffd" not in out
