"""Token healing: a cursor that splits a token would otherwise steer the model off its training
distribution (a prompt ending in "re" when "return" is one token). We back the prompt off its
last token and make the first generated tokens reproduce the removed characters.

A cursor at a line's indentation (the prompt ends with a newline and spaces or tabs, where an
editor leaves it after auto-indent) is a special case: the indentation is the user's, so the
completion must start with code, not more whitespace. Byte-level tokenizers attach the last
space of an indentation to the word after it, and FIM training cuts more often fall inside an
indentation than at its end, so models left alone tend to indent further (measured on the demo
model: most held-out line holes started with extra spaces)."""

from __future__ import annotations

import torch

from engine.tokenizer import Tokenizer


def back_off(tok: Tokenizer, text: str) -> tuple[str, str]:
    """Split `text` into (kept, removed) where `removed` is the text of its last token."""
    ids = tok.encode(text)
    if not ids:
        return text, ""
    kept = tok.decode(ids[:-1])
    if not text.startswith(kept) or kept == text:
        return text, ""
    return kept, text[len(kept):]


def at_indentation(kept: str, removed: str) -> bool:
    """Whether the cursor sits right after a line's indentation (`removed` being all of it)."""
    return bool(removed) and not removed.strip(" \t") and (not kept or kept.endswith("\n"))


class HealConstraint:
    """Allows only tokens consistent with the characters still to reproduce; with `code_next`
    (the removed text is the cursor line's indentation), also no whitespace beyond them."""

    def __init__(self, tok: Tokenizer, removed: str, code_next: bool = False):
        self.tok = tok
        self.remaining = removed
        self.code_next = code_next

    @property
    def active(self) -> bool:
        return bool(self.remaining) or self.code_next

    def _ok(self, t: str) -> bool:
        r = self.remaining
        if not t:
            return False
        if r.startswith(t):
            return True
        return t.startswith(r) and not (self.code_next and t[len(r)].isspace())

    def allowed(self, vocab: int, device: torch.device) -> torch.Tensor:
        """Bool [vocab]: tokens whose text is a prefix of what remains, or starts with it (and then,
        with `code_next`, goes on with a non-space)."""
        ok = [self._ok(t) for t in self.tok.token_texts]
        ok += [False] * (vocab - len(ok))
        return torch.tensor(ok[:vocab], device=device)

    def advance(self, token_id: int) -> None:
        text = self.tok.token_texts[token_id]
        if self.code_next and len(text) > len(self.remaining):
            self.code_next = False  # code has started
        self.remaining = self.remaining[len(text):] if self.remaining.startswith(text) else ""
