"""Token healing: a cursor that splits a token would otherwise steer the model off its training
distribution (a prompt ending in "re" when "return" is one token). We back the prompt off its
last token and make the first generated tokens reproduce the removed characters.

A cursor at a line's indentation (the prompt ends with a newline and spaces or tabs, where an
editor leaves it after auto-indent) is a special case: the indentation is the user's, so the
completion must start with code, not more whitespace. There we back off only what the tokenizer
would join to the code that follows (GPT-2-style BPE joins the last space to the next word: "\n",
"       ", " return"), found by encoding the prompt with a probe character after it. The prompt
then tokenizes as the whole file does, and one token finishes the indentation and starts the code.
Backing off the whole indentation instead let the model spell it in pieces it never saw (measured
on the demo model, docs/MODEL_CARD.md)."""

from __future__ import annotations

import torch

from engine.tokenizer import Tokenizer

PROBE = "x"  # a word character: byte-level BPE joins the space before it, as before any code


def at_indentation(text: str) -> bool:
    """Whether `text` ends right after a line's indentation (only spaces or tabs since the last newline)."""
    line = text[text.rfind("\n") + 1:]
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
    return kept, text[len(kept):]


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

    def _ok(self, t: str) -> bool:
        r = self.remaining
        if self.code_next:
            return len(t) > len(r) and t.startswith(r) and not t[len(r)].isspace()
        return bool(t) and (r.startswith(t) or t.startswith(r))

    def allowed(self, vocab: int, device: torch.device) -> torch.Tensor:
        """Bool [vocab]: which tokens may come next."""
        ok = [self._ok(t) for t in self.tok.token_texts]
        ok += [False] * (vocab - len(ok))
        return torch.tensor(ok[:vocab], device=device)

    def advance(self, token_id: int) -> None:
        text = self.tok.token_texts[token_id]
        self.remaining = self.remaining[len(text):] if self.remaining.startswith(text) else ""
        self.code_next = False
