"""Fill-in-the-middle training examples, in PSM order (prefix, suffix, middle).

PSM is the order inference prompts with: `<s><fim_prefix>p<fim_suffix>s<fim_middle>` and the model
continues with the middle and `</s>`. Only PSM is trained (no SPM), so the model learns one layout
well. The cuts fall at random character positions, mid-token included, because an editor's
cursor does too; each piece is tokenized on its own, exactly as a prompt's prefix and suffix are.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from engine.training.tokenizer import BOS, EOS, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX


def split(text: str, rng: random.Random) -> tuple[str, str, str]:
    """(prefix, middle, suffix) cut at two uniformly random character positions."""
    a, b = sorted(rng.randint(0, len(text)) for _ in range(2))
    return text[:a], text[a:b], text[b:]


def psm(prefix: list[int], middle: list[int], suffix: list[int]) -> list[int]:
    """`<s><fim_prefix>p<fim_suffix>s<fim_middle>m</s>` as token ids."""
    return [BOS, FIM_PREFIX, *prefix, FIM_SUFFIX, *suffix, FIM_MIDDLE, *middle, EOS]


def fim_example(text: str, rng: random.Random, encode: Callable[[str], list[int]]) -> list[int]:
    """One PSM example made from `text`, cut at random."""
    prefix, middle, suffix = split(text, rng)
    return psm(encode(prefix), encode(middle), encode(suffix))
