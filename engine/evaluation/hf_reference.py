"""The same NLD weights as a `transformers.Ministral3ForCausalLM`: the AR correctness oracle and
the `hf-generate` baseline of `nemodiff bench`. Parameters are shared, not copied (an int8 model's
are dequantized: transformers then runs the weights the engine rounded to)."""

from __future__ import annotations

from engine.loading.checkpoint import hf_name
from engine.model.config import ModelConfig
from engine.model.network import NLDModel
from engine.model.quantize import float_state_dict


def ministral3_config(cfg: ModelConfig):
    from transformers import Ministral3Config

    return Ministral3Config(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        head_dim=cfg.head_dim,
        rms_norm_eps=cfg.rms_norm_eps,
        max_position_embeddings=cfg.max_position_embeddings,
        rope_parameters=dict(cfg.rope_parameters),
        tie_word_embeddings=False,
        bos_token_id=cfg.bos_token_id,
        eos_token_id=cfg.eos_token_id,
        pad_token_id=cfg.pad_token_id,
    )


def as_transformers(model: NLDModel):
    """A Ministral3ForCausalLM whose parameters are the NLD model's own tensors."""
    import torch
    from transformers import Ministral3ForCausalLM

    with torch.device("meta"):
        hf = Ministral3ForCausalLM(ministral3_config(model.config))
    # Only the tensors transformers has: not the draft adapter, nor an int8 model's fused copies.
    wanted = hf.state_dict().keys()
    state = {hf_name(k): v for k, v in float_state_dict(model).items() if hf_name(k) in wanted}
    hf.load_state_dict(state, strict=True, assign=True)
    hf.model.rotary_emb = type(hf.model.rotary_emb)(hf.config).to(model.encoder.embed_tokens.weight.device)
    return hf.eval()
