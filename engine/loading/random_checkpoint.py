"""Random NLD checkpoints of any preset size: for tests, benchmarks and memory planning without a download.

The tensors are generated chunk by chunk from seeded generators and written straight into a
hand-built safetensors file, so writing an 8B or 14B checkpoint needs memory for one chunk, never
for the model. Every size stores bf16, like the released checkpoints (tiny is still < 300 kB).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import torch

from engine.loading.checkpoint import Progress
from engine.model.config import ModelConfig, preset
from engine.loading.safetensors_file import write_safetensors
from engine.model.network import NLDModel

_CHUNK_ELEMENTS = 1 << 24  # 32 MiB of bf16 per write, 64 MiB of fp32 while generating it


def write_random_checkpoint(
    dir: str | Path, size: str | ModelConfig = "tiny", seed: int = 0, progress: Progress | None = None
) -> Path:
    """Write config.json, a tokenizer and a random bf16 model.safetensors for a preset (or a custom config).

    The tokenizer is the demo model's byte-level BPE with under 512 tokens whatever the size: larger
    vocabularies simply hold ids it never produces. The config's bos/eos/pad/mask ids are set to the
    tokenizer's. Returns the directory.
    """
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    cfg = preset(size) if isinstance(size, str) else size
    if cfg.vocab_size < len(tokenizer):
        raise ValueError(
            f"vocab_size {cfg.vocab_size} is smaller than the tokenizer's {len(tokenizer)} tokens"
        )
    cfg = dataclasses.replace(
        cfg,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
    )
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    tokenizer.save_pretrained(out)
    with torch.device("meta"):
        shapes = [(name, tuple(p.shape)) for name, p in NLDModel(cfg).named_parameters()]
    entries = [(name, torch.bfloat16, shape) for name, shape in shapes]
    write_safetensors(
        out / "model.safetensors", entries, lambda i: _random_chunks(shapes[i][1], seed, i), progress
    )
    return out


def _tokenizer():
    """The demo tokenizer's format, trained in milliseconds on Python's keywords and builtin names
    (about 490 tokens); bos/eos/pad/mask are ids 1/2/3/4, as in the tiny preset. Imported here
    because it pulls in transformers, which `import engine` should not pay for."""
    import builtins
    import keyword

    from engine.prompts.bpe import build_tokenizer

    return build_tokenizer(
        [" ".join(keyword.kwlist + sorted(n for n in dir(builtins) if not n.startswith("_")))], 512
    )


def init_std(fan_in: int) -> float:
    """Random weights' standard deviation: max(0.02, 1/sqrt(fan_in)), so even a tiny model's
    activations and logits keep unit scale (0.02 alone would make its softmax nearly flat)."""
    return max(0.02, fan_in**-0.5)


def _random_chunks(shape: tuple[int, ...], seed: int, index: int) -> Iterator[torch.Tensor]:
    """Ones for norms; rows of normal(0, init_std) for matrices."""
    if len(shape) == 1:
        yield torch.ones(shape)
        return
    rows, cols = shape
    std = init_std(cols)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + index)
    step = max(1, _CHUNK_ELEMENTS // cols)
    for start in range(0, rows, step):
        yield torch.randn(min(step, rows - start), cols, generator=gen) * std
