"""Greedy AR equals transformers' greedy generate() on the same weights (mask token suppressed)."""

from __future__ import annotations

from engine.evaluation.mode_bench import hf_generate
from tests.engine.util import run


def test_greedy_ar_equals_transformers_generate(tiny_engine):
    generate = hf_generate(tiny_engine)
    for prompt in ["def forward(self, x", "import os\n", "for i in range(10):\n    print("]:
        _, done = run(tiny_engine, prompt=prompt, mode="ar", max_new_tokens=30, heal=False)
        ids, _ = generate(done.prompt_token_ids, 30)
        assert done.token_ids == ids
