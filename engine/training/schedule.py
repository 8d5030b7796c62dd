"""How a run steps: the learning-rate schedule, the optimiser and the precision steps run in.

The learning rate warms up linearly, then decays as 1/sqrt(step): no total length is needed,
which suits a run continued over sessions of unknown number.
"""

from __future__ import annotations

import math

import torch

from engine.loading.checkpoint import resolve_dtype
from engine.model.network import NLDModel
from engine.training.settings import Settings


def lr_at(step: int, s: Settings, cooldown: tuple[int, int] | None = None, restart: int = 0) -> float:
    """Linear warmup, then inverse-square-root decay (continuous at the end of warmup); during a
    cooldown `(first step, length)` the rate also falls linearly to zero. A run started from an
    export at step `restart` has fresh optimizer moments, so it warms up again from there."""
    n = step + 1
    lr = s.lr * min(1.0, (n - restart) / s.warmup_steps) * min(1.0, math.sqrt(s.warmup_steps / n))
    if cooldown is not None:
        lr *= max(0.0, 1 - (step - cooldown[0]) / cooldown[1])
    return lr


def make_optimizer(model: NLDModel, s: Settings) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s.lr, betas=(0.9, 0.95), eps=1e-8)


def mixed_precision(device: torch.device) -> torch.autocast:
    """bf16 autocast where bf16 is native (CUDA, AVX512-BF16/AMX CPUs), else plain fp32: an AVX2 CPU
    emulates bf16 many times slower than fp32 (docs/MODEL_CARD.md)."""
    return torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=resolve_dtype(None, device) == torch.bfloat16
    )
