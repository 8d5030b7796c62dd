"""Fill-in-the-middle prompt formats, detected from the tokenizer's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.prompts.tokenizer import Tokenizer


@dataclass(frozen=True)
class FimFormat:
    name: str
    prefix: str
    suffix: str
    middle: str
    stops: tuple[str, ...] = ()  # extra special tokens that end the middle
    spaced: bool = False  # CodeLlama: `<PRE> {p} <SUF>{s} <MID>`
    spm: bool = False  # suffix first: `<suffix>s<prefix>p<middle>` (the model's config says `fim_order: spm`)

    def ids(self, tok: Tokenizer, prefix: str, suffix: str) -> list[int]:
        """The prompt, after whatever the tokenizer's template puts first (BOS for our demo model)."""
        pre, suf, mid = (tok.token_id(t) for t in (self.prefix, self.suffix, self.middle))
        space = " " if self.spaced else ""
        p, s = [pre] + tok.encode(space + prefix), [suf] + tok.encode(space + suffix)
        return tok.template_prefix + (s + p if self.spm else p + s) + [mid]

    def overhead(self, tok: Tokenizer) -> int:
        """Most tokens `ids` adds to those of prefix and suffix: the template's, three markers, and
        CodeLlama's two spaces (which may encode as tokens of their own)."""
        return len(tok.template_prefix) + 3 + (2 if self.spaced else 0)

    def stop_ids(self, tok: Tokenizer) -> set[int]:
        ids = (tok.token_id(t) for t in (self.prefix, self.suffix, self.middle, *self.stops))
        return {i for i in ids if i is not None}


FORMATS = (
    # Our demo model uses StarCoder's spelling, plus a file separator.
    FimFormat("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", ("<fim_pad>", "<file_sep>", "<|endoftext|>")),
    FimFormat("qwen2.5-coder", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
              ("<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|endoftext|>")),
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
        prefix = tok.decode(p[len(p) - keep_p:]) if keep_p > 0 else ""
        prefix = prefix[prefix.find("\n") + 1:] if "\n" in prefix else prefix.lstrip("\ufffd")
    if keep_s < len(s):
        suffix = tok.decode(s[:keep_s]) if keep_s > 0 else ""
        suffix = suffix[: suffix.rfind("\n") + 1] if "\n" in suffix else suffix.rstrip("\ufffd")
    return prefix, suffix
