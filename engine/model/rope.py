"""YaRN rotary tables and the Llama-4-style position-dependent query scale of Ministral-3."""

from __future__ import annotations

import math

import torch

from engine.model.config import ModelConfig
from kernels.rope_ref import signed_sin


def _yarn_mscale(scale: float, mscale: float) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def inv_freq_and_scale(cfg: ModelConfig) -> tuple[torch.Tensor, float]:
    """Inverse frequencies [head_dim/2] and the cos/sin attention factor, as YaRN defines them."""
    rp, dim = cfg.rope_parameters, cfg.head_dim
    base = cfg.rope_theta
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    if rp.get("rope_type", "yarn") != "yarn":
        return 1.0 / pos_freqs, 1.0
    factor = float(rp["factor"])
    orig = rp["original_max_position_embeddings"]
    mscale, mscale_all = rp.get("mscale"), rp.get("mscale_all_dim")
    attn = rp.get("attention_factor")
    if attn is None:
        attn = (
            _yarn_mscale(factor, mscale) / _yarn_mscale(factor, mscale_all)
            if mscale and mscale_all
            else _yarn_mscale(factor, 1)
        )

    def correction_dim(rotations: float) -> float:
        return dim * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(correction_dim(rp.get("beta_fast") or 32)), 0)
    high = min(math.ceil(correction_dim(rp.get("beta_slow") or 1)), dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    extrapolation = 1 - ramp
    inv_freq = (1.0 / (factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
    return inv_freq, float(attn)


class Rotary:
    """cos/sin [T, head_dim] (fp32) and the query scale [T] for absolute positions.

    With a `bound` (the cache's size: every cached position lies below it) they come from tables
    built once and grown by doubling, so a decode step is three views; without one (training,
    tests at arbitrary positions) they are computed directly.
    """

    def __init__(self, cfg: ModelConfig, device: torch.device):
        inv_freq, self.attention_scale = inv_freq_and_scale(cfg)
        self.inv_freq = inv_freq.to(device)
        rp = cfg.rope_parameters
        self.beta = rp.get("llama_4_scaling_beta")
        self.orig_max = rp.get("original_max_position_embeddings", cfg.max_position_embeddings)
        self.tables = self.compute(torch.arange(0, device=device))
        self.signed = self.tables[1]  # `signed_sin` of the sine table

    def compute(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        freqs = positions.float()[:, None] * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos() * self.attention_scale, emb.sin() * self.attention_scale
        if self.beta is None:
            q_scale = torch.ones_like(positions, dtype=torch.float32)
        else:
            q_scale = 1 + self.beta * torch.log(1 + torch.floor(positions.float() / self.orig_max))
        return cos, sin, q_scale

    def __call__(
        self, positions: torch.Tensor | int, bound: int | None = None, t: int = 0, signed: bool = False
    ):
        """Tables at `positions`, or at the `t` positions from an int `positions` on (views, no
        lookup). The query scale is None where it is 1 at every position below `bound`. `signed`
        gives the sine with its first half negated (`kernels.rope_ref.rope_packed` takes it)."""
        if bound is None:
            if isinstance(positions, int):
                positions = torch.arange(positions, positions + t, device=self.inv_freq.device)
            cos, sin, q_scale = self.compute(positions)
            return cos, signed_sin(sin) if signed else sin, q_scale
        if bound > len(self.tables[0]):
            size = max(bound, 2 * len(self.tables[0]))
            self.tables = self.compute(torch.arange(size, device=self.inv_freq.device))
            self.signed = signed_sin(self.tables[1])
        cos, sin, q_scale = self.tables
        sin = self.signed if signed else sin
        scaled = self.beta is not None and bound > self.orig_max
        if isinstance(positions, int):
            return (
                cos.narrow(0, positions, t),
                sin.narrow(0, positions, t),
                q_scale.narrow(0, positions, t) if scaled else None,
            )
        return cos[positions], sin[positions], q_scale[positions] if scaled else None
