"""Loading never holds two copies of the weights: peak memory of a load in a fresh process."""

from __future__ import annotations

import subprocess
import sys

from engine.loading.random_checkpoint import write_random_checkpoint
from engine.model.config import ModelConfig

PEAK_RSS = """
import resource, sys, engine
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[1] != "-":
    engine.load(sys.argv[1], device="cpu", dtype=sys.argv[2])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def peak_kib(path: str, dtype: str = "bf16") -> int:
    out = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, path, dtype], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


# About 170 MB of bf16 weights: large enough that a second copy shows in the peak RSS.
SHAPES = ModelConfig(
    vocab_size=16384,
    hidden_size=1024,
    intermediate_size=2816,
    num_hidden_layers=6,
    num_attention_heads=8,
    num_key_value_heads=2,
    head_dim=128,
)


def test_peak_memory_is_one_copy_of_the_weights(tmp_path):
    write_random_checkpoint(tmp_path, SHAPES)
    weights_kib = (tmp_path / "model.safetensors").stat().st_size // 1024  # about 170 MB of bf16
    grown = peak_kib(str(tmp_path)) - peak_kib("-")
    assert grown < 1.5 * weights_kib, (
        f"loading grew the process by {grown} KiB for {weights_kib} KiB of weights"
    )


def test_an_int8_load_never_holds_the_bf16_weights(tmp_path, monkeypatch):
    """Quantized as they stream from disk, first load and cached load alike: the int8 model is about
    half the bf16 weights (the embedding stays bf16)."""
    monkeypatch.setenv("NEMODIFF_CACHE_DIR", str(tmp_path / "cache"))
    write_random_checkpoint(tmp_path / "ckpt", SHAPES)
    weights_kib = (tmp_path / "ckpt" / "model.safetensors").stat().st_size // 1024
    baseline = peak_kib("-")
    for load in ("first", "cached"):
        grown = peak_kib(str(tmp_path / "ckpt"), "int8") - baseline
        assert grown < 0.8 * weights_kib, (
            f"{load} int8 load grew the process by {grown} KiB for {weights_kib} KiB of bf16"
        )
