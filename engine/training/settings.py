"""What shapes a demo-model training run, and the model config it exports."""

from __future__ import annotations

from dataclasses import dataclass

from engine.model.config import ModelConfig
from engine.prompts.bpe import BOS, EOS, MASK, PAD


@dataclass
class Settings:
    """Everything that shapes a run; stored in the checkpoint, which wins on resume."""

    # Model: 8.7M parameters (4.2M of them embedding + head), 17.4 MB in bf16, sized for hours of CPU.
    vocab_size: int = (
        8192  # 3.35 characters per token on the stdlib; embedding + head stay about half the model
    )
    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 6
    num_attention_heads: int = 8
    num_key_value_heads: int = 2
    head_dim: int = 32
    rope_theta: float = 1e4  # NLD's YaRN otherwise; the training contexts are short
    # Data and objective.
    seq_len: int = 256
    batch_size: int = 8
    blocks: tuple[int, ...] = (8, 16, 32)  # drawn per step; inference uses 8 to 32
    fim_rate: float = 0.5
    alpha: float = 0.3
    eps: float = 1e-3
    ordered_masking: float = 0.0  # share of blocks masked position-dependently (objective.py)
    rename_rate: float = 0.0  # share of file reads renamed (renaming.py)
    # Optimisation.
    lr: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    dropout: float = 0.0  # residual dropout while training (`add_dropout`)
    # Bookkeeping.
    log_every: int = 10
    eval_sequences: int = 32


def model_config(s: Settings) -> ModelConfig:
    """The exported config: NLD's own fields and YaRN settings at demo size, the tokenizer's ids, and
    the context it was trained on as `max_position_embeddings` (the engine fits prompts to it)."""
    return ModelConfig(
        max_position_embeddings=s.seq_len,
        vocab_size=s.vocab_size,
        hidden_size=s.hidden_size,
        intermediate_size=s.intermediate_size,
        num_hidden_layers=s.num_hidden_layers,
        num_attention_heads=s.num_attention_heads,
        num_key_value_heads=s.num_key_value_heads,
        head_dim=s.head_dim,
        rope_parameters=dict(ModelConfig().rope_parameters, rope_theta=s.rope_theta),
        mask_token_id=MASK,
        eos_token_id=EOS,
        bos_token_id=BOS,
        pad_token_id=PAD,
        block_size=8,
        threshold=0.15,  # chosen by the sweeps in docs/MODEL_CARD.md
        fim_order="spm",  # measured far better than PSM for the first token (docs/MODEL_CARD.md)
    )
