"""Fill-in-the-middle training examples, in SPM (suffix, prefix, middle) and PSM order.

SPM, `<s><fim_suffix>s<fim_prefix>p<fim_middle>m</s>` (suffix first, like Codestral's format), is
the order the demo model is prompted in (`fim_order` in its config.json): the prefix ends right
before the middle, so the cursor's context is the nearest thing the first token attends to, which
a small model uses far better than a prefix end beyond the whole suffix (docs/MODEL_CARD.md). The
rest (`1 - SPM_RATE`) stay PSM, `<s><fim_prefix>p<fim_suffix>s<fim_middle>m</s>`, the layout most
FIM tools send.

Cuts fall at random character positions, mid-token included, because an editor's cursor does
too; each piece is tokenized on its own, exactly as a prompt's prefix and suffix are. A share of
the examples (`LINE_RATE`) is cut where an editor's cursor most often is instead: right after a
line's indentation, with the middle running to the end of that line or of one of the next few.
Random cuts alone fall inside an indentation more often than at its end, and a model trained
only on them indents further at a cursor that already sits at the right column (docs/MODEL_CARD.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from engine.prompts.bpe import BOS, EOS, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX

SPM_RATE = 0.75  # share of FIM examples in SPM order
LINE_RATE = 0.5  # share of FIM examples cut at a line's indentation
MAX_MIDDLE_LINES = 4


def split(text: str, rng: random.Random) -> tuple[str, str, str]:
    """(prefix, middle, suffix) cut at two uniformly random character positions."""
    a, b = sorted(rng.randint(0, len(text)) for _ in range(2))
    return text[:a], text[a:b], text[b:]


def split_at_line(text: str, rng: random.Random) -> tuple[str, str, str]:
    """(prefix, middle, suffix): the prefix ends at a random line's indentation, where the tokenizer
    splits it from the code (before its last space), so the cut tokenizes as the whole text does and
    as a healed prompt does (engine/prompts/healing.py); the middle is the rest of that line, or runs on to
    the end of one of the next MAX_MIDDLE_LINES - 1 lines."""
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    first = rng.randrange(len(starts))
    a = starts[first]
    while a < len(text) and text[a] in " \t":
        a += 1
    if a > starts[first] and text[a - 1] == " " and a < len(text) and text[a] != "\n":
        a -= 1  # byte-level BPE joins the indentation's last space to the code: cut where it does
    last = min(first + rng.randrange(MAX_MIDDLE_LINES), len(starts) - 1)
    b = text.find("\n", max(a, starts[last]))
    b = len(text) if b < 0 else b
    return text[:a], text[a:b], text[b:]


def psm(prefix: list[int], middle: list[int], suffix: list[int]) -> list[int]:
    """`<s><fim_prefix>p<fim_suffix>s<fim_middle>m</s>` as token ids."""
    return [BOS, FIM_PREFIX, *prefix, FIM_SUFFIX, *suffix, FIM_MIDDLE, *middle, EOS]


def spm(prefix: list[int], middle: list[int], suffix: list[int]) -> list[int]:
    """`<s><fim_suffix>s<fim_prefix>p<fim_middle>m</s>` as token ids."""
    return [BOS, FIM_SUFFIX, *suffix, FIM_PREFIX, *prefix, FIM_MIDDLE, *middle, EOS]


def fim_example(
    text: str,
    rng: random.Random,
    encode: Callable[[str], list[int]],
    spm_rate: float = 0.0,
    line_rate: float = 0.0,
) -> list[int]:
    """One example made from `text`: cut at a line's indentation with probability `line_rate`, else
    at random characters; SPM with probability `spm_rate`, else PSM."""
    at_line = line_rate and rng.random() < line_rate
    prefix, middle, suffix = (split_at_line if at_line else split)(text, rng)
    layout = spm if spm_rate and rng.random() < spm_rate else psm
    return layout(encode(prefix), encode(middle), encode(suffix))
