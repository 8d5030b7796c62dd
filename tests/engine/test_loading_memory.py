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
    engine.load(sys.argv[1], device="cpu", dtype="bf16")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def peak_kib(path: str) -> int:
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, path], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_peak_memory_is_one_copy_of_the_weights(tmp_path):
    cfg = ModelConfig(vocab_size=16384, hidden_size=1024, intermediate_size=2816, num_hidden_layers=6,
                      num_attention_heads=8, num_key_value_heads=2, head_dim=128)
    write_random_checkpoint(tmp_path, cfg)
    weights_kib = (tmp_path / "model.safetensors").stat().st_size // 1024  # about 170 MB of bf16
    grown = peak_kib(str(tmp_path)) - peak_kib("-")
    assert grown < 1.5 * weights_kib, f"loading grew the process by {grown} KiB for {weights_kib} KiB of weights"
