"""Token healing: a cursor that splits a token would otherwise steer the model off its training
distribution (a prompt ending in "re" when "return" is one token). We back the prompt off its
last token and make the first generated tokens reproduce the removed characters."""

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


class HealConstraint:
    """Allows only tokens consistent with the characters still to reproduce."""

    def __init__(self, tok: Tokenizer, removed: str):
        self.tok = tok
        self.remaining = removed

    @property
    def active(self) -> bool:
        return bool(self.remaining)

    def allowed(self, vocab: int, device: torch.device) -> torch.Tensor:
        """Bool [vocab]: tokens whose text starts with, or is a prefix of, what remains."""
        r = self.remaining
        ok = [bool(t) and (t.startswith(r) or r.startswith(t)) for t in self.tok.token_texts]
        ok += [False] * (vocab - len(ok))
        return torch.tensor(ok[:vocab], device=device)

    def advance(self, token_id: int) -> None:
        text = self.tok.token_texts[token_id]
        self.remaining = self.remaining[len(text):] if self.remaining.startswith(text) else ""
