"""A thin wrapper over the checkpoint's tokenizer: safe encoding, special ids, per-token strings
(for token healing) and UTF-8-safe incremental detokenization.

The tokenizer is a `transformers` one, or, where transformers would run the checkpoint's
tokenizer.json as it is (our demo model's), `TokenizerFiles`: the same Rust tokenizer without
importing transformers, about a second of every start-up."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from tokenizers import Tokenizer as RustTokenizer

from engine.errors import RequestError, first_line


class Tokenizer:
    def __init__(self, hf, eos_id: int | None = None, mask_id: int | None = None):
        self.hf = hf
        self.eos_id = eos_id if eos_id is not None else hf.eos_token_id
        self.mask_id = mask_id
        self.bos_id = hf.bos_token_id
        self._fast = getattr(hf, "backend_tokenizer", None)

    def encode(self, text: str) -> list[int]:
        """Token ids of user text; special-token spellings inside it stay plain text (no injection)."""
        return self.hf.encode(text, add_special_tokens=False, split_special_tokens=True)

    @cached_property
    def template_prefix(self) -> list[int]:
        """Special tokens the tokenizer's own template puts before a text (usually BOS)."""
        ids = self.hf.encode("a", add_special_tokens=True)
        plain = self.encode("a")
        for i in range(len(ids)):
            if ids[i : i + len(plain)] == plain:
                return ids[:i]
        return []

    @cached_property
    def chat_template(self) -> str | None:
        """The checkpoint's chat template (instruct checkpoints ship one), or None."""
        template = getattr(self.hf, "chat_template", None)
        return template or None

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """A conversation rendered by the chat template, up to the assistant's next turn. Unlike
        `encode`, the rendered text's control tokens are parsed as such (the template writes them).
        A conversation the template refuses (roles that do not alternate, ...) is a RequestError."""
        from jinja2 import TemplateError  # transformers renders templates with jinja2

        try:
            text = self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except TemplateError as e:
            raise RequestError(f"the chat template refused the conversation: {first_line(e)}") from None
        return self.hf.encode(text, add_special_tokens=False)

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
        return ["" if i in special else self.decode([i]) for i in range(len(self.hf))]


class TokenizerFiles:
    """tokenizer.json run by `tokenizers` alone, with the special tokens tokenizer_config.json
    names: the members of a transformers tokenizer that `Tokenizer` uses, the same ids.

    Only for a config whose class runs tokenizer.json as it is, and without a chat template (`load`
    returns None otherwise, and transformers loads the tokenizer): classes like LlamaTokenizerFast
    rewrite its template, and transformers renders chat templates."""

    PLAIN = ("TokenizersBackend", "PreTrainedTokenizerFast")
    NAMED = ("bos_token", "eos_token", "unk_token", "pad_token", "mask_token")

    def __init__(self, backend, config: dict):
        self.backend_tokenizer = backend
        names = [config.get(key) for key in self.NAMED]
        extra = config.get("extra_special_tokens") or config.get("additional_special_tokens") or []
        names += list(extra.values()) if isinstance(extra, dict) else list(extra)  # a dict names them by role
        ids = [self._id(name) for name in names]
        backend.encode_special_tokens = True  # set once: flipping it per call would race between threads
        self.bos_token_id, self.eos_token_id, self.unk_token_id, self.pad_token_id, self.mask_token_id = ids[
            :5
        ]
        self.all_special_ids = [i for i in ids if i is not None]

    @classmethod
    def load(cls, path: Path) -> TokenizerFiles | None:
        try:
            config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
            plain = config.get("tokenizer_class") in cls.PLAIN and not {
                "add_bos_token",
                "add_eos_token",
            } & set(config)
            plain = plain and not config.get("chat_template") and not any(path.glob("chat_template*"))
            return cls(RustTokenizer.from_file(str(path / "tokenizer.json")), config) if plain else None
        except Exception:  # unreadable or unusual: transformers loads it, or says what is wrong
            return None

    def _id(self, token) -> int | None:
        token = token.get("content") if isinstance(token, dict) else token
        return self.backend_tokenizer.token_to_id(token) if isinstance(token, str) else None

    def encode(self, text: str, add_special_tokens: bool, split_special_tokens: bool = True) -> list[int]:
        """Special-token spellings in `text` are always plain text here (all `Tokenizer` asks for)."""
        assert split_special_tokens
        return self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self.backend_tokenizer.token_to_id(token)

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)


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
        seen = self.tok.decode(self.ids[self.prefix_offset : self.read_offset])
        text = self.tok.decode(self.ids[self.prefix_offset :])
        if len(text) <= len(seen) or (text.endswith("\ufffd") and not final):
            return ""
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return text[len(seen) :]

    def push(self, ids: list[int]) -> str:
        self.ids.extend(ids)
        return self._delta(final=False)

    def flush(self) -> str:
        """Whatever was held back at the end (an incomplete UTF-8 sequence stays as U+FFFD)."""
        return self._delta(final=True)
