import random
import time

from transformers import AutoTokenizer

from engine.prompts.bpe import (
    BOS,
    EOS,
    FIM_MIDDLE,
    FIM_PREFIX,
    FIM_SUFFIX,
    FILE_SEP,
    MASK,
    PAD,
    UNK,
    build_tokenizer,
    text_encoder,
)


def _random_unicode(rng: random.Random, n: int) -> str:
    chars = []
    while len(chars) < n:
        c = rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0, 0x110000), ord(rng.choice("\n\t\r "))])
        if not 0xD800 <= c < 0xE000:  # surrogates are not encodable text
            chars.append(chr(c))
    return "".join(chars)


def test_builds_fast_and_fixes_special_ids(sample_texts):
    start = time.perf_counter()
    tok = build_tokenizer(sample_texts[:1], 512)
    assert time.perf_counter() - start < 2
    assert len(tok) == 512
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.mask_token_id) == (
        UNK,
        BOS,
        EOS,
        PAD,
        MASK,
    )
    assert tok.convert_tokens_to_ids(["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"]) == [
        FIM_PREFIX,
        FIM_SUFFIX,
        FIM_MIDDLE,
        FILE_SEP,
    ]


def test_saved_tokenizer_round_trips_arbitrary_unicode(tiny_tokenizer, tmp_path):
    tiny_tokenizer.save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert tok.mask_token_id == MASK and tok.pad_token_id == PAD
    rng = random.Random(0)
    for _ in range(100):
        text = _random_unicode(rng, 60)
        ids = tok(text)["input_ids"]
        assert ids[0] == BOS
        assert tok.decode(ids[1:]) == text


def test_newlines_are_their_own_tokens(tiny_tokenizer):
    newline_tokens = [t for t in tiny_tokenizer.get_vocab() if "Ċ" in t]
    assert newline_tokens == ["Ċ"]
    ids = tiny_tokenizer("def f():\n        return 1\n", add_special_tokens=False)["input_ids"]
    pieces = [tiny_tokenizer.decode([i]) for i in ids]
    assert pieces[pieces.index("\n") + 1].strip(" ") == ""  # the indentation starts the next line


def test_corpus_encoder_keeps_special_token_text_as_text(tiny_tokenizer):
    text = 'END = "</s>"  # <|mask|>\n'
    ids = text_encoder(tiny_tokenizer).encode(text).ids
    assert EOS not in ids and MASK not in ids and BOS not in ids
    assert tiny_tokenizer.decode(ids) == text
