import random

import pytest

from engine.prompts.bpe import BOS, EOS, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, PAD, text_encoder
from engine.training.data import TrainStream
from engine.training.fim_transform import MAX_MIDDLE_LINES, fim_example, psm, split, split_at_line, spm


def test_split_cuts_at_characters_and_keeps_everything():
    rng = random.Random(0)
    text = "def add(a, b):\n    return a + b\n"
    for _ in range(50):
        prefix, middle, suffix = split(text, rng)
        assert prefix + middle + suffix == text


def test_line_cuts_put_the_cursor_where_the_tokenizer_splits_indentation_from_code():
    rng = random.Random(0)
    text = "class A:\n    def f(self):\n\n        return 1\n    x = 2\n"
    seen = set()
    for _ in range(200):
        prefix, middle, suffix = split_at_line(text, rng)
        assert prefix + middle + suffix == text
        assert prefix.rsplit("\n", 1)[-1].strip(" \t") == ""  # the cursor line holds only indentation
        assert middle == "" or middle.startswith("\n") or not middle.lstrip(" ")[:1].isspace()
        assert suffix == "" or suffix.startswith("\n")
        assert middle.count("\n") < MAX_MIDDLE_LINES
        seen.add(middle)
    # An indented line keeps one space for the code's first token, as " return" is one token.
    assert {" return 1", "class A:", " def f(self):", " return 1\n    x = 2"} <= seen
    assert not any(m.startswith("  ") for m in seen)


def test_line_rate_picks_line_cuts():
    encode = lambda s: [ord(c) for c in s]  # noqa: E731
    text = "def f():\n    return 1\n"
    line_starts = 0
    rng = random.Random(1)
    for _ in range(400):
        ids = fim_example(text, rng, encode, 0.0, 0.5)
        prefix = "".join(chr(i) for i in ids[2 : ids.index(FIM_SUFFIX)])
        line_starts += prefix in ("", "def f():\n   ", "def f():\n    return 1\n")
    assert 180 < line_starts < 290  # half line cuts, plus random cuts that land there by chance


def test_psm_layout():
    assert psm([10, 11], [20], [30, 31, 32]) == [
        BOS,
        FIM_PREFIX,
        10,
        11,
        FIM_SUFFIX,
        30,
        31,
        32,
        FIM_MIDDLE,
        20,
        EOS,
    ]


def test_spm_layout_and_rate():
    assert spm([10, 11], [20], [30]) == [BOS, FIM_SUFFIX, 30, FIM_PREFIX, 10, 11, FIM_MIDDLE, 20, EOS]
    rng = random.Random(0)
    firsts = [fim_example("abcdef", rng, lambda s: [ord(c) for c in s], 0.25)[1] for _ in range(400)]
    assert 60 < firsts.count(FIM_SUFFIX) < 140 and firsts.count(FIM_PREFIX) + firsts.count(FIM_SUFFIX) == 400


def test_fim_example_pieces_decode_to_prefix_suffix_middle(tiny_tokenizer):
    encoder = text_encoder(tiny_tokenizer)
    text = "for i in range(10):\n    print(i, 'é')\n"
    ids = fim_example(text, random.Random(3), lambda s: encoder.encode(s).ids)
    prefix, middle, suffix = split(text, random.Random(3))
    assert ids[:2] == [BOS, FIM_PREFIX] and ids[-1] == EOS
    p_end, m_start = ids.index(FIM_SUFFIX), ids.index(FIM_MIDDLE)
    assert tiny_tokenizer.decode(ids[2:p_end]) == prefix
    assert tiny_tokenizer.decode(ids[p_end + 1 : m_start]) == suffix
    assert tiny_tokenizer.decode(ids[m_start + 1 : -1]) == middle


def test_fim_rows_pack_examples_of_varied_length_and_the_plain_stream_fills_them(
    sample_texts, tiny_tokenizer
):
    encoder = text_encoder(tiny_tokenizer)
    rows = TrainStream(sample_texts, encoder, 128, seed=0, fim_rate=1.0).next_batch(32).tolist()
    fills, ends = [], []
    for row in rows:
        assert len(row) == 128 and PAD not in row
        pos = 0
        while row[pos] == BOS and row[pos + 1] in (FIM_PREFIX, FIM_SUFFIX):
            end = row.index(EOS, pos)
            body = row[pos : end + 1]
            assert body.count(FIM_PREFIX) == body.count(FIM_SUFFIX) == body.count(FIM_MIDDLE) == 1
            assert max(body.index(FIM_PREFIX), body.index(FIM_SUFFIX)) < body.index(FIM_MIDDLE)
            ends.append(end)
            pos = end + 1
        assert pos > 0  # every FIM row starts with an example, as a prompt does
        fills += row[pos:]
    # Where a middle ends must not be told by its position: a model learns to end middles there.
    assert min(ends) < 32 and max(ends) > 100
    assert len(ends) > 1.5 * len(rows)  # packing: more </s> targets per row
    plain = sum(TrainStream(sample_texts, encoder, 128, seed=0, fim_rate=0.0).next_batch(32).tolist(), [])
    assert fills == plain[: len(fills)]  # the fills, in order, are the plain stream


def test_plain_windows_pack_whole_files(tiny_tokenizer):
    encoder = text_encoder(tiny_tokenizer)
    short = [f"x{i} = {i} * 2\n" for i in range(40)]
    stream = sum(TrainStream(short, encoder, 128, seed=0, fim_rate=0.0).next_batch(4).tolist(), [])
    first = stream.index(EOS) + 1
    assert stream[0] == BOS and stream[first] == BOS and PAD not in stream
    assert tiny_tokenizer.decode(stream[1 : first - 1]) in short


@pytest.mark.parametrize("rename_rate", [0.0, 0.5])
def test_stream_resumes_exactly(sample_texts, tiny_tokenizer, rename_rate):
    encoder = text_encoder(tiny_tokenizer)
    a = TrainStream(sample_texts, encoder, 64, seed=1, fim_rate=0.5, rename_rate=rename_rate)
    a.next_batch(20)
    b = TrainStream(sample_texts, encoder, 64, seed=1, fim_rate=0.5, rename_rate=rename_rate)
    b.load_state_dict(a.state_dict())
    for _ in range(10):  # crosses epochs: four short files make ~25 windows each
        assert a.next_batch(8).tolist() == b.next_batch(8).tolist()
