"""The same NLD weights as a `transformers.Ministral3ForCausalLM`: the AR correctness oracle and
the `hf-generate` baseline of `nemodiff bench`. Parameters are shared, not copied."""

from __future__ import annotations

from engine.config import ModelConfig
from engine.model import NLDModel


def ministral3_config(cfg: ModelConfig):
    from transformers import Ministral3Config

    return Ministral3Config(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim, rms_norm_eps=cfg.rms_norm_eps,
        max_position_embeddings=cfg.max_position_embeddings, rope_parameters=dict(cfg.rope_parameters),
        tie_word_embeddings=False, bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id,
        pad_token_id=cfg.pad_token_id,
    )


def hf_name(name: str) -> str:
    """NLD tensor name -> Ministral-3 tensor name."""
    return name.replace("encoder.", "model.", 1).replace("diffusion_head.", "lm_head.", 1)


def as_transformers(model: NLDModel):
    """A Ministral3ForCausalLM whose parameters are the NLD model's own tensors."""
    import torch
    from transformers import Ministral3ForCausalLM

    with torch.device("meta"):
        hf = Ministral3ForCausalLM(ministral3_config(model.config))
    state = {hf_name(k): v for k, v in model.state_dict().items() if ".o_lora." not in k}
    hf.load_state_dict(state, strict=True, assign=True)
    hf.model.rotary_emb = type(hf.model.rotary_emb)(hf.config).to(model.diffusion_head.weight.device)
    return hf.eval()
