"""The NLD model configuration: what `config.json` says, and the preset sizes."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

MODEL_TYPE = "nemotron_labs_diffusion"
ARCHITECTURE = "NemotronLabsDiffusionModel"


def _default_rope() -> dict[str, Any]:
    return {
        "rope_type": "yarn",
        "rope_theta": 1e6,
        "factor": 16.0,
        "original_max_position_embeddings": 16384,
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "mscale": 1.0,
        "mscale_all_dim": 1.0,
        "llama_4_scaling_beta": 0.1,
    }


@dataclass
class ModelConfig:
    vocab_size: int = 131072
    hidden_size: int = 4096
    intermediate_size: int = 14336
    num_hidden_layers: int = 34
    num_attention_heads: int = 32
    num_key_value_heads: int = 8
    head_dim: int = 128
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 262144
    rope_parameters: dict[str, Any] = field(default_factory=_default_rope)
    mask_token_id: int = 100
    eos_token_id: int = 11
    bos_token_id: int = 1
    pad_token_id: int | None = 11
    block_size: int = 32
    threshold: float = 0.9
    fim_order: str = "psm"  # not an NLD field: "spm" = the model is prompted suffix first (our demo model)
    model_type: str = MODEL_TYPE

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        d = dict(d)
        # Older configs spell the RoPE settings as `rope_scaling` + top-level `rope_theta`.
        if "rope_parameters" not in d and "rope_scaling" in d:
            rope = dict(d["rope_scaling"] or {})
            rope.setdefault("rope_theta", d.get("rope_theta", 1e6))
            rope.setdefault("rope_type", rope.pop("type", "yarn" if "factor" in rope else "default"))
            d["rope_parameters"] = rope
        if isinstance(d.get("eos_token_id"), list):
            d["eos_token_id"] = d["eos_token_id"][0]
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def problem(self) -> str | None:
        """What makes this config unusable, in one line (None when it is usable): a wrong type or
        range would otherwise surface as a torch error deep inside the first forward."""
        sizes = (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
            "max_position_embeddings",
        )
        for name in sizes:
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                return f"{name} must be a positive integer, not {value!r}"
        for name in ("mask_token_id", "eos_token_id", "bos_token_id", "pad_token_id"):
            value = getattr(self, name)
            if not (value is None and name != "mask_token_id") and not (
                _is_int(value) and 0 <= value < self.vocab_size
            ):
                return f"{name} must be a token id below vocab_size {self.vocab_size}, not {value!r}"
        if not _is_int(self.block_size) or self.block_size < 2:
            return f"block_size must be an integer of at least 2, not {self.block_size!r}"
        if not (_is_number(self.threshold) and 0 <= self.threshold <= 1):
            return f"threshold must be a number in [0, 1], not {self.threshold!r}"
        if not (_is_number(self.rms_norm_eps) and self.rms_norm_eps > 0):
            return f"rms_norm_eps must be a positive number, not {self.rms_norm_eps!r}"
        rope = self.rope_parameters
        if not isinstance(rope, dict) or not _is_number(rope.get("rope_theta", 1e6)):
            return f"rope_parameters must be an object with a numeric rope_theta, not {rope!r}"
        if (
            rope.get("rope_type", "yarn") == "yarn"
            and not {"factor", "original_max_position_embeddings"} <= rope.keys()
        ):
            return "yarn RoPE needs factor and original_max_position_embeddings"
        return None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["architectures"] = [ARCHITECTURE]
        d.update(
            tie_word_embeddings=False, hidden_act="silu", dlm_paradigm="bidirectional", torch_dtype="bfloat16"
        )
        return d

    @property
    def rope_theta(self) -> float:
        return float(self.rope_parameters.get("rope_theta", 1e6))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


_BIG = dict(vocab_size=131072, num_attention_heads=32, num_key_value_heads=8, head_dim=128)
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        mask_token_id=4,
        eos_token_id=2,
        bos_token_id=1,
        pad_token_id=3,
    ),
    "3b": dict(_BIG, hidden_size=3072, intermediate_size=9216, num_hidden_layers=26),
    "8b": dict(_BIG, hidden_size=4096, intermediate_size=14336, num_hidden_layers=34),
    "14b": dict(
        _BIG,
        hidden_size=5120,
        intermediate_size=16384,
        num_hidden_layers=40,
        rope_parameters=dict(_default_rope(), rope_theta=1e9),
    ),
}


def preset(size: str) -> ModelConfig:
    if size not in PRESETS:
        raise ValueError(f"unknown size {size!r}: choose one of {', '.join(PRESETS)}")
    return ModelConfig(**PRESETS[size])
