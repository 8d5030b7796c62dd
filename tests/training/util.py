"""Helpers for training tests."""

from __future__ import annotations

from engine.training.settings import Settings

# A model that trains in milliseconds: the trainer's code paths, none of its cost.
TINY = Settings(
    vocab_size=512,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    seq_len=32,
    batch_size=2,
    blocks=(8, 16),
    warmup_steps=2,
    log_every=1,
    eval_sequences=2,
)
