"""Fill-in-the-middle prompt formats, detected from the tokenizer's vocabulary, and the budget
that context chunks from other files get in front of them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.prompts.tokenizer import Tokenizer
from engine.request import ContextChunk

# Most of a prompt's token budget that context chunks may take, whatever the local text needs,
# so the chunks kept depend on the chunks alone: a warm-up with only the chunks and the
# completions that follow it start with the same tokens, and reuse the cached prefill.
CONTEXT_SHARE = 0.5


@dataclass(frozen=True)
class FimFormat:
    name: str
    prefix: str
    suffix: str
    middle: str
    stops: tuple[str, ...] = ()  # extra special tokens that end the middle
    spaced: bool = False  # CodeLlama: `<PRE> {p} <SUF>{s} <MID>`
    spm: bool = False  # suffix first: `<suffix>s<prefix>p<middle>` (the model's config says `fim_order: spm`)
    file_sep: str | None = None  # repo-level prompts: `<file_sep>name\ntext` per file before the FIM markers

    def ids(self, tok: Tokenizer, prefix: str, suffix: str, context: list[int] = ()) -> list[int]:
        """The prompt, after whatever the tokenizer's template puts first (BOS for our demo model)
        and the `context` chunks' ids (`context_ids`)."""
        pre, suf, mid = (tok.token_id(t) for t in (self.prefix, self.suffix, self.middle))
        space = " " if self.spaced else ""
        p, s = [pre] + tok.encode(space + prefix), [suf] + tok.encode(space + suffix)
        return tok.template_prefix + list(context) + (s + p if self.spm else p + s) + [mid]

    def overhead(self, tok: Tokenizer) -> int:
        """Most tokens `ids` adds to those of prefix and suffix: the template's, three markers, and
        CodeLlama's two spaces (which may encode as tokens of their own)."""
        return len(tok.template_prefix) + 3 + (2 if self.spaced else 0)

    def stop_ids(self, tok: Tokenizer) -> set[int]:
        ids = (tok.token_id(t) for t in (self.prefix, self.suffix, self.middle, *self.stops))
        return {i for i in ids if i is not None}


FORMATS = (
    # Our demo model uses StarCoder's spelling, plus a file separator.
    FimFormat(
        "starcoder",
        "<fim_prefix>",
        "<fim_suffix>",
        "<fim_middle>",
        ("<fim_pad>", "<file_sep>", "<|endoftext|>"),
        file_sep="<file_sep>",
    ),
    FimFormat(
        "qwen2.5-coder",
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        ("<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|endoftext|>"),
        file_sep="<|file_sep|>",
    ),
    FimFormat("deepseek-coder", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", ("<|EOT|>",)),
    FimFormat("codellama", "▁<PRE>", "▁<SUF>", "▁<MID>", ("▁<EOT>",), spaced=True),
)


def detect(tok: Tokenizer, spm: bool = False) -> FimFormat | None:
    """The first format whose three markers are all single tokens of this vocabulary, in PSM order
    unless the model was trained to be prompted suffix first (`spm`)."""
    for fmt in FORMATS:
        if all(tok.token_id(t) is not None for t in (fmt.prefix, fmt.suffix, fmt.middle)):
            return replace(fmt, spm=spm)
    return None


def fit(tok: Tokenizer, prefix: str, suffix: str, budget: int) -> tuple[str, str]:
    """Trim the far ends of prefix and suffix so both fit in `budget` tokens, about 3:1, keeping
    the text nearest the cursor and cutting at line boundaries where possible."""
    p, s = tok.encode(prefix), tok.encode(suffix)
    if len(p) + len(s) <= budget:
        return prefix, suffix
    keep_s = min(len(s), max(budget // 4, budget - len(p)))
    keep_p = budget - keep_s
    if keep_p < len(p):
        prefix = tok.decode(p[len(p) - keep_p :]) if keep_p > 0 else ""
        prefix = prefix[prefix.find("\n") + 1 :] if "\n" in prefix else prefix.lstrip("\ufffd")
    if keep_s < len(s):
        suffix = tok.decode(s[:keep_s]) if keep_s > 0 else ""
        suffix = suffix[: suffix.rfind("\n") + 1] if "\n" in suffix else suffix.rstrip("\ufffd")
    return prefix, suffix


def chunk_ids(tok: Tokenizer, fmt: FimFormat | None, chunk: ContextChunk) -> list[int]:
    """One chunk: the format's file separator, the file name and the text (StarCoder2's and
    Qwen2.5-Coder's repo-level layout, as llama.cpp builds it), or a plain-text header for
    formats without one. Encoded on its own, so a chunk's ids never depend on its neighbours."""
    sep = tok.token_id(fmt.file_sep) if fmt is not None and fmt.file_sep else None
    if sep is not None:
        return [sep] + tok.encode(f"{chunk.filename}\n{chunk.text}")
    return tok.encode(
        f"--- {chunk.filename} ---\n{chunk.text}{'' if chunk.text.endswith(chr(10)) else chr(10)}\n"
    )


def context_ids(
    tok: Tokenizer, fmt: FimFormat | None, chunks: list[ContextChunk], budget: int
) -> tuple[list[int], int]:
    """The ids of the newest chunks that fit whole in `budget` tokens, oldest first, and how many
    chunks that is. Chunks are dropped whole, oldest first (llama.vim's ring lists them oldest
    first): one cut mid-way would be a fragment of code without its start or its end."""
    kept: list[list[int]] = []
    used = 0
    for chunk in reversed(chunks):
        ids = chunk_ids(tok, fmt, chunk)
        if used + len(ids) > budget:
            break
        kept.append(ids)
        used += len(ids)
    return [i for ids in reversed(kept) for i in ids], len(kept)
