"""Small real texts for the training tests: a few stdlib modules, read directly (no corpus walk)."""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerFast

from engine.evaluation.corpus import stdlib_root
from engine.prompts.bpe import build_tokenizer


@pytest.fixture(scope="session")
def sample_texts() -> list[str]:
    root = stdlib_root()
    return [
        (root / name).read_text(encoding="utf-8")
        for name in ("textwrap.py", "bisect.py", "colorsys.py", "heapq.py")
    ]


@pytest.fixture(scope="session")
def tiny_tokenizer(sample_texts: list[str]) -> PreTrainedTokenizerFast:
    return build_tokenizer(sample_texts, 512)
