"""Fill-in-the-middle training examples, in PSM (prefix, suffix, middle) and SPM order.

PSM is the order inference prompts with: `<s><fim_prefix>p<fim_suffix>s<fim_middle>` and the model
continues with the middle and `</s>`. A quarter of the examples (`SPM_RATE`) use SPM,
`<s><fim_suffix>s<fim_prefix>p<fim_middle>m</s>` (suffix first, like Codestral's format), so the
model also learns to read the suffix before the prefix; most stay PSM, the layout it serves. The cuts fall at random character positions, mid-token included, because an editor's
cursor does too; each piece is tokenized on its own, exactly as a prompt's prefix and suffix are.
"""

from __future__ import annotations

import random
from collections.abc import Callable

SPM_RATE = 0.25  # share of FIM examples in SPM order

from engine.training.tokenizer import BOS, EOS, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX


def split(text: str, rng: random.Random) -> tuple[str, str, str]:
    """(prefix, middle, suffix) cut at two uniformly random character positions."""
    a, b = sorted(rng.randint(0, len(text)) for _ in range(2))
    return text[:a], text[a:b], text[b:]


def psm(prefix: list[int], middle: list[int], suffix: list[int]) -> list[int]:
    """`<s><fim_prefix>p<fim_suffix>s<fim_middle>m</s>` as token ids."""
    return [BOS, FIM_PREFIX, *prefix, FIM_SUFFIX, *suffix, FIM_MIDDLE, *middle, EOS]


def spm(prefix: list[int], middle: list[int], suffix: list[int]) -> list[int]:
    """`<s><fim_suffix>s<fim_prefix>p<fim_middle>m</s>` as token ids."""
    return [BOS, FIM_SUFFIX, *suffix, FIM_PREFIX, *prefix, FIM_MIDDLE, *middle, EOS]


def fim_example(text: str, rng: random.Random, encode: Callable[[str], list[int]], spm_rate: float = 0.0) -> list[int]:
    """One example made from `text`, cut at random: SPM with probability `spm_rate`, else PSM."""
    prefix, middle, suffix = split(text, rng)
    layout = spm if spm_rate and rng.random() < spm_rate else psm
    return layout(encode(prefix), encode(middle), encode(suffix))
