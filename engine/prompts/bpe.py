"""Byte-level BPE tokenizer for the demo model (and the tiny ones random checkpoints ship).

Byte-level, so any text round-trips exactly. Newlines are isolated before BPE: a vocabulary that
merges "\n" with the next line's indentation turns a prompt ending at a line start into an empty
line plus a different indentation token than training saw, so the model stumbles there. Runs of
spaces may still merge among themselves (indentation is cheap).

Special tokens sit at fixed low ids (their order in SPECIAL_TOKENS), the same in every vocabulary.
The tokenizer prepends `<s>` when asked to add special tokens, as NLD's own tokenizer does; every
training document starts with `<s>`, so `tokenizer(prompt)` reproduces the training layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

if TYPE_CHECKING:  # transformers is imported where it is used: every `nemodiff` command loads this
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS: tuple[str, ...] = (
    "<unk>",
    "<s>",
    "</s>",
    "<pad>",
    "<|mask|>",
    "<fim_prefix>",
    "<fim_suffix>",
    "<fim_middle>",
    "<file_sep>",
)
UNK, BOS, EOS, PAD, MASK, FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, FILE_SEP = range(len(SPECIAL_TOKENS))


def _empty_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS[UNK]))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex("\n"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    bos = SPECIAL_TOKENS[BOS]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, BOS)]
    )
    return tok


def build_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; `.save_pretrained(dir)` makes it loadable by AutoTokenizer."""
    tok = _empty_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """The transformers view of a raw tokenizer, with the roles of the special tokens filled in."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=SPECIAL_TOKENS[UNK],
        bos_token=SPECIAL_TOKENS[BOS],
        eos_token=SPECIAL_TOKENS[EOS],
        pad_token=SPECIAL_TOKENS[PAD],
        mask_token=SPECIAL_TOKENS[MASK],
        additional_special_tokens=[SPECIAL_TOKENS[i] for i in (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, FILE_SEP)],
        clean_up_tokenization_spaces=False,
    )


def text_encoder(tokenizer: PreTrainedTokenizerFast) -> Tokenizer:
    """A raw encoder for corpus text: no `<s>` added, and "</s>" in source code stays plain text."""
    tok = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    tok.encode_special_tokens = True
    tok.post_processor = None
    return tok
