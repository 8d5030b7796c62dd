"""Token healing: a prompt cut inside a token completes as if it were cut at a boundary."""

from __future__ import annotations

from transformers import AutoTokenizer

from engine.events import Step
from engine.loading.checkpoint import DEMO_DIR
from engine.prompts.healing import HealConstraint, at_indentation, back_off
from engine.prompts.tokenizer import Tokenizer
from engine.request import GenerationConfig, Request
from tests.engine.util import run


def test_back_off_removes_the_last_token(tiny_engine):
    tok = tiny_engine.tokenizer
    kept, removed = back_off(tok, "def forward(self")
    assert kept + removed == "def forward(self" and removed
    assert tok.encode(kept) == tok.encode("def forward(self")[:-1]


def test_completion_begins_with_removed_characters(tiny_engine):
    """The model's own tokens reproduce the cut characters; the user sees only what follows them."""
    tok = tiny_engine.tokenizer
    for prompt in ["import o", "while Tr", "retur", "def f(x):\n    "]:
        for mode in ("ar", "diffusion", "self-spec"):
            events, done = run(tiny_engine, prompt=prompt, mode=mode, max_new_tokens=12, block_size=8)
            _, removed = back_off(tok, prompt)
            generated = tok.decode(done.token_ids)
            assert generated.startswith(removed), (prompt, mode, generated)
            assert generated[len(removed) :].startswith(done.text) or done.stop_reason == "stop"
            assert done.prompt_token_ids[-1] == tok.encode(prompt[: len(prompt) - len(removed)])[-1]


def test_healing_off_keeps_the_prompt(tiny_engine):
    for prompt in ("import o", "def f():\n    "):
        _, done = run(tiny_engine, prompt=prompt, mode="ar", max_new_tokens=4, heal=False)
        assert done.prompt_token_ids[1:] == tiny_engine.tokenizer.encode(prompt)
    prompt = tiny_engine._prompt(Request(prompt="def f():\n    ", config=GenerationConfig(heal=False)), 64)
    assert prompt.heal is None  # not even the indentation rule


def test_fim_heals_the_prefix(tiny_engine):
    events, done = run(
        tiny_engine, prefix="def add(a, b):\n    retu", suffix="\n", mode="ar", max_new_tokens=6
    )
    tok = tiny_engine.tokenizer
    _, removed = back_off(tok, "def add(a, b):\n    retu")
    assert tok.decode(done.token_ids).startswith(removed)
    assert isinstance(events[0], Step) and events[0].kind == "prefill"


class _Tok:
    token_texts = ["", "    ", "   ", " ", "        ", " x", "  x", "x", "\n", "\tx"]


def test_at_indentation_means_only_spaces_or_tabs_since_the_last_newline():
    assert at_indentation("def f():\n    ") and at_indentation("\t") and at_indentation("a\n ")
    assert not at_indentation("def f():\n  x ") and not at_indentation("x = 1\n") and not at_indentation("")


def test_at_an_indentation_only_the_space_the_tokenizer_joins_to_code_is_backed_off():
    """GPT-2-style BPE spells "\n" + 8 spaces + "return" as "\n", 7 spaces, " return": the prompt
    keeps the 7 spaces, as the whole file's tokens do."""
    demo_tokenizer = Tokenizer(AutoTokenizer.from_pretrained(DEMO_DIR))
    for indent in ("    ", "        ", " " * 20):
        text = "def f(x):\n" + indent
        kept, removed = back_off(demo_tokenizer, text)
        assert (kept, removed) == (text[:-1], " ")
        whole, ids = demo_tokenizer.encode(text + "return x"), demo_tokenizer.encode(kept)
        assert ids == whole[: len(ids)] and demo_tokenizer.token_texts[whole[len(ids)]] == " return"


def test_indentation_is_final_one_token_starts_the_code():
    allowed = lambda h: {t for t, ok in zip(_Tok.token_texts, h.allowed(len(_Tok.token_texts), "cpu")) if ok}  # noqa: E731
    assert allowed(HealConstraint(_Tok(), " ")) == {
        " ",
        "   ",
        "    ",
        "        ",
        " x",
        "  x",
    }  # plain: anything that fits
    h = HealConstraint(_Tok(), " ", code_next=True)
    assert allowed(h) == {" x"}  # no more whitespace, no splitting the space off the code
    h.advance(_Tok.token_texts.index(" x"))
    assert not h.active
    tabs = HealConstraint(_Tok(), "", code_next=True)  # nothing backed off (tabs): code must come first
    assert tabs.active and allowed(tabs) == {"x"}


def test_the_token_index_finds_what_a_scan_of_the_vocabulary_finds():
    """Candidates come from a sorted index (bisection), not a pass over the vocabulary: the same set."""
    tok = Tokenizer(AutoTokenizer.from_pretrained(DEMO_DIR))
    texts = tok.token_texts

    def scan(r: str, code_next: bool) -> set[int]:
        if code_next:
            return {
                i
                for i, t in enumerate(texts)
                if len(t) > len(r) and t.startswith(r) and not t[len(r)].isspace()
            }
        return {i for i, t in enumerate(texts) if t and (r.startswith(t) or t.startswith(r))}

    for r in ("", " ", "re", "retur", " return", "self.", "\n", "        ", "'''", "é", "zzzq"):
        for code_next in (False, True):
            got = HealConstraint(tok, r, code_next).allowed(len(texts), "cpu").nonzero().flatten().tolist()
            assert set(got) == scan(r, code_next), (r, code_next)
