"""A thin wrapper over the checkpoint's `transformers` tokenizer: safe encoding, special ids,
per-token strings (for token healing) and UTF-8-safe incremental detokenization."""

from __future__ import annotations

from functools import cached_property


class Tokenizer:
    def __init__(self, hf, eos_id: int | None = None, mask_id: int | None = None):
        self.hf = hf
        self.eos_id = eos_id if eos_id is not None else hf.eos_token_id
        self.mask_id = mask_id
        self.bos_id = hf.bos_token_id
        self._fast = getattr(hf, "backend_tokenizer", None)

    def encode(self, text: str) -> list[int]:
        """Token ids of user text; special-token spellings inside it stay plain text (no injection)."""
        return self.hf(text, add_special_tokens=False, split_special_tokens=True).input_ids

    @cached_property
    def template_prefix(self) -> list[int]:
        """Special tokens the tokenizer's own template puts before a text (usually BOS)."""
        ids = self.hf("a", add_special_tokens=True).input_ids
        plain = self.encode("a")
        for i in range(len(ids)):
            if ids[i:i + len(plain)] == plain:
                return ids[:i]
        return []

    def decode(self, ids: list[int]) -> str:
        if self._fast is not None:  # the Rust tokenizer directly: no per-call Python conversions
            return self._fast.decode(ids, skip_special_tokens=False)
        return self.hf.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def token_id(self, token: str) -> int | None:
        """Id of a single vocabulary entry, or None when the vocabulary lacks it."""
        tid = self.hf.convert_tokens_to_ids(token)
        return None if tid is None or tid == self.hf.unk_token_id else tid

    @cached_property
    def special_ids(self) -> frozenset[int]:
        return frozenset(self.hf.all_special_ids) | {i for i in (self.eos_id, self.mask_id) if i is not None}

    @cached_property
    def token_texts(self) -> list[str]:
        """The text of every token decoded on its own ("" for special tokens); built once, on demand."""
        special = self.special_ids
        n = len(self.hf)
        return ["" if i in special else self.hf.decode([i], clean_up_tokenization_spaces=False) for i in range(n)]


class StreamDecoder:
    """Turns a growing list of token ids into append-only text deltas, in O(1) per token.

    Decodes a short window starting a few tokens back (so tokenizers that mark word starts keep
    their spaces) and holds text back while it ends in U+FFFD, an incomplete UTF-8 sequence.
    """

    def __init__(self, tokenizer: Tokenizer, context: list[int]):
        self.tok = tokenizer
        self.ids = [i for i in context[-4:] if i not in tokenizer.special_ids]
        self.prefix_offset = 0  # window start
        self.read_offset = len(self.ids)  # tokens before this were already turned into text

    def _delta(self, final: bool) -> str:
        seen = self.tok.decode(self.ids[self.prefix_offset:self.read_offset])
        text = self.tok.decode(self.ids[self.prefix_offset:])
        if len(text) <= len(seen) or (text.endswith("\ufffd") and not final):
            return ""
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return text[len(seen):]

    def push(self, ids: list[int]) -> str:
        self.ids.extend(ids)
        return self._delta(final=False)

    def flush(self) -> str:
        """Whatever was held back at the end (an incomplete UTF-8 sequence stays as U+FFFD)."""
        return self._delta(final=True)
