"""Engine fixtures: the tiny random checkpoint loaded once for the package, and a random Llama
checkpoint for the transformers AR fallback."""

from __future__ import annotations

import pytest
import torch

import engine


@pytest.fixture(scope="session")
def tiny_engine(tiny_checkpoint):
    return engine.load(str(tiny_checkpoint), device="cpu")


@pytest.fixture(scope="session")
def llama_checkpoint(tmp_path_factory, tiny_checkpoint):
    """A random Llama (not NLD) with the tiny tokenizer: served by the transformers AR fallback."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("llama")
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    torch.manual_seed(0)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            eos_token_id=tok.eos_token_id,
            bos_token_id=tok.bos_token_id,
        )
    ).save_pretrained(out)
    tok.save_pretrained(out)
    return out
