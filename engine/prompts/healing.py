"""Token healing: a cursor that splits a token would otherwise steer the model off its training
distribution (a prompt ending in "re" when "return" is one token). We back the prompt off its
last token and make the first generated tokens reproduce the removed characters.

A cursor at a line's indentation (the prompt ends with a newline and spaces or tabs, where an
editor leaves it after auto-indent) is a special case: the indentation is the user's, so the
completion must start with code, not more whitespace. There we back off only what the tokenizer
would join to the code that follows (GPT-2-style BPE joins the last space to the next word: "\n",
"       ", " return"), found by encoding the prompt with a probe character after it. The prompt
then tokenizes as the whole file does, and one token finishes the indentation and starts the code.
Backing off the whole indentation instead lets the model spell it in pieces it never saw
(docs/MODEL_CARD.md)."""

from __future__ import annotations

import bisect
import functools

import torch

from engine.prompts.tokenizer import Tokenizer

PROBE = "x"  # a word character: byte-level BPE joins the space before it, as before any code


def at_indentation(text: str) -> bool:
    """Whether `text` ends right after a line's indentation (only spaces or tabs since the last newline)."""
    line = text[text.rfind("\n") + 1 :]
    return bool(line) and not line.strip(" \t")


def back_off(tok: Tokenizer, text: str) -> tuple[str, str]:
    """Split `text` into (kept, removed): `removed` is the text of its last token or, at a line's
    indentation, the part of the indentation the tokenizer joins to the code after it."""
    ids = tok.encode(text + PROBE if at_indentation(text) else text)
    if not ids:
        return text, ""
    kept = tok.decode(ids[:-1])
    if not text.startswith(kept) or kept == text:
        return text, ""
    return kept, text[len(kept) :]


def heal_prompt(tok: Tokenizer, text: str) -> tuple[str, HealConstraint | None]:
    """The prompt text to encode, and the constraint on the first generated tokens (None when
    nothing needs healing)."""
    kept, removed = back_off(tok, text)
    code_next = at_indentation(text)
    return kept, (HealConstraint(tok, removed, code_next) if removed or code_next else None)


class HealConstraint:
    """Allows only tokens consistent with the characters still to reproduce; with `code_next` (the
    cursor sits at a line's indentation), only a token that reproduces them all and goes on with code."""

    def __init__(self, tok: Tokenizer, removed: str, code_next: bool = False):
        self.tok = tok
        self.remaining = removed
        self.code_next = code_next

    @property
    def active(self) -> bool:
        return bool(self.remaining) or self.code_next

    def allowed(self, vocab: int, device: torch.device) -> torch.Tensor:
        """Bool [vocab]: which tokens may come next."""
        ok = torch.zeros(vocab, dtype=torch.bool)
        ids = _index(self.tok).candidates(self.remaining, self.code_next)
        ok[[i for i in ids if i < vocab]] = True
        return ok.to(device)

    def advance(self, token_id: int) -> None:
        text = self.tok.token_texts[token_id]
        self.remaining = self.remaining[len(text) :] if self.remaining.startswith(text) else ""
        self.code_next = False


class TokenIndex:
    """The token texts in sorted order, so the tokens that start with a string form one range
    found by bisection: a constraint's candidates without a pass over the vocabulary, which for
    NLD's 131k tokens would cost every healed request tens of milliseconds (docs/BENCHMARKS.md)."""

    def __init__(self, texts: list[str]):
        pairs = sorted((t, i) for i, t in enumerate(texts) if t)  # special tokens decode to ""
        self.texts = [t for t, _ in pairs]
        self.ids = [i for _, i in pairs]

    def starting_with(self, prefix: str) -> range:
        """Positions (into `texts`) of the tokens that start with `prefix`."""
        lo = bisect.bisect_left(self.texts, prefix)
        return range(lo, bisect.bisect_left(self.texts, prefix + "\U0010ffff", lo))

    @functools.lru_cache(maxsize=256)
    def candidates(self, remaining: str, code_next: bool) -> tuple[int, ...]:
        """Tokens consistent with the characters `remaining`: each a prefix of them or starting
        with them; with `code_next`, only tokens that cover them all and go on with code."""
        n = len(remaining)
        if code_next:
            return tuple(
                self.ids[k]
                for k in self.starting_with(remaining)
                if len(self.texts[k]) > n and not self.texts[k][n].isspace()
            )
        longer = [self.ids[k] for k in self.starting_with(remaining)]
        return tuple(longer + [i for j in range(1, n) for i in self.exactly(remaining[:j])])

    def exactly(self, text: str) -> list[int]:
        """Ids of the tokens whose text is `text`."""
        lo = bisect.bisect_left(self.texts, text)
        return self.ids[lo : bisect.bisect_right(self.texts, text, lo)]


@functools.lru_cache(maxsize=4)
def _index(tok: Tokenizer) -> TokenIndex:
    return TokenIndex(tok.token_texts)
