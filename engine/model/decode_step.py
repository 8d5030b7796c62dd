"""One AR token on a CPU as a single TorchScript call: the lean path of one-row decode passes.

A small model's AR step on a CPU is dispatch, not arithmetic: about a hundred torch ops, each
paying Python's argument parsing on top of the dispatcher, which for the tiny random checkpoint is
most of a token's time. `DecodeStep` runs the ops of `NLDModel.forward` with the torch reference
kernels from TorchScript, in the same order on the same dtypes, so its hidden state equals the
eager pass's bit for bit (tests/engine/test_decode_step.py); only the Python between the ops goes,
and with it a few wrappers: `mm` on the transposed weight where `F.linear` calls `t`, `matmul`
and then that `mm`, and the embedding row as a view. Like `KVCache.stage` it writes the token's
K/V into the slot after the cache and leaves committing to the caller.

`NativeRunner` uses it for a CPU's causal one-token passes at the next position without the draft
adapter, on float weights fused by `NLDModel.fuse_projections` (int8 modules and every other pass
run `NLDModel.forward`). `torch.jit.script` is deprecated since torch 2.13 but still works; where
it fails the runner keeps the eager pass. Measurements: docs/BENCHMARKS.md (issue 22).
"""

from __future__ import annotations

import logging
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.errors import first_line
from engine.model.cache import KVCache
from engine.model.network import NLDModel
from engine.model.rope import Rotary
from kernels import ops
from kernels.rmsnorm_ref import rms_norm_with

log = logging.getLogger("nemodiff.engine")


class DecodeStep:
    """`step(token, cache)`: the final hidden state [1, hidden] of `token` at position `cache.length`."""

    def __init__(self, model: NLDModel):
        self.model = model
        self.dtype = model.encoder.embed_tokens.weight.dtype
        device = model.encoder.embed_tokens.weight.device
        if model.rotary is None or model.rotary.inv_freq.device != device:
            model.rotary = Rotary(model.config, device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
            self.scripted = torch.jit.script(_OneToken(model))

    @staticmethod
    def build(model: NLDModel) -> DecodeStep | None:
        """A step for `model` if it runs on a CPU with fused float weights (not int8 modules) and
        TorchScript can compile it, else None."""
        layer = model.encoder.layers[0]
        weight = model.encoder.embed_tokens.weight
        fused = isinstance(layer.self_attn.qkv, Tensor) and isinstance(layer.mlp.gate_up, Tensor)
        if weight.device.type != "cpu" or not fused:
            return None
        try:
            return DecodeStep(model)
        except Exception as e:  # a torch without TorchScript: the eager pass does the same work
            log.warning("one-token CPU passes run eagerly: TorchScript failed (%s)", first_line(e))
            return None

    def fits(self, cache: KVCache) -> bool:
        """Whether the cache has a slot for the token (else the eager pass raises its "context full")."""
        return cache.length < cache.k.shape[3]

    def __call__(self, token: int, cache: KVCache) -> Tensor:
        cos, sin, q_scale = self.model.rope_tables(cache.length, cache, 1, self.dtype, ops.REFERENCE)
        return self.scripted.forward(token, cache.k, cache.v, cache.length, cos, sin, q_scale)


class _OneToken(nn.Module):
    """The scripted pass over the model's weights (views, not copies)."""

    def __init__(self, model: NLDModel):
        super().__init__()
        cfg = model.config
        layers = model.encoder.layers
        self.embed = model.encoder.embed_tokens.weight
        self.input_norms = [layer.input_layernorm.weight for layer in layers]
        self.post_norms = [layer.post_attention_layernorm.weight for layer in layers]
        # weights as [in, out] views: `F.linear(x, w)` of one row is `mm(x, w.t())`
        self.qkv = [layer.self_attn.qkv.t() for layer in layers]
        self.o_proj = [layer.self_attn.o_proj.weight.t() for layer in layers]
        self.gate_up = [layer.mlp.gate_up.t() for layer in layers]
        self.down = [layer.mlp.down_proj.weight.t() for layer in layers]
        self.final_norm = model.encoder.norm.weight
        self.n_heads, self.n_kv, self.head_dim = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        )
        # `kernels.rmsnorm_ref.rms_norm_with`'s constants: eps and the width as tensors
        self.eps = torch.tensor(cfg.rms_norm_eps)
        self.width = torch.tensor(float(cfg.hidden_size))

    def forward(
        self,
        token: int,
        k_cache: Tensor,
        v_cache: Tensor,
        length: int,
        cos: Tensor,
        sin: Tensor,
        q_scale: Optional[Tensor],
    ) -> Tensor:
        """cos, the signed sine [1, D] and the query scale ([1, 1] or None) are
        `NLDModel.rope_tables`' at position `length`."""
        d, hq, hkv = self.head_dim, self.n_heads, self.n_kv
        x = self.embed.narrow(0, token, 1)
        residual: Optional[Tensor] = None
        i = 0
        for qkv_w, o_w, gate_up_w, down_w, norm_in, norm_post in zip(
            self.qkv, self.o_proj, self.gate_up, self.down, self.input_norms, self.post_norms
        ):
            h, residual = self._norm(x, norm_in, residual)
            heads = torch.mm(h, qkv_w).view(1, -1, 1, d)  # [1, Hq + 2 Hkv, 1, D]
            qk, v = heads.split_with_sizes([hq + hkv, hkv], dim=1)
            q, k = (qk * cos + qk.roll(d // 2, -1) * sin).split_with_sizes([hq, hkv], dim=1)
            if q_scale is not None:
                q = q * q_scale
            k_layer, v_layer = k_cache.select(0, i), v_cache.select(0, i)
            k_layer.narrow(2, length, 1).copy_(k)
            v_layer.narrow(2, length, 1).copy_(v)
            o = self._attend(q, k_layer.narrow(2, 0, length + 1), v_layer.narrow(2, 0, length + 1))
            x = torch.mm(o.view(1, -1), o_w)
            h, residual = self._norm(x, norm_post, residual)
            gate, up = torch.mm(h, gate_up_w).chunk(2, dim=-1)
            x = torch.mm(F.silu(gate) * up, down_w)
            i += 1
        return self._norm(x, self.final_norm, residual)[0]

    def _norm(self, x: Tensor, weight: Tensor, residual: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        return rms_norm_with(x, weight, self.eps, self.width, residual)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """`kernels.attention_ref.attention_ref` for one causal query over the fp32 cache: grouped
        heads as a [1, Hkv, group, D] view, half-precision queries attended in fp32."""
        hq, hkv, d = self.n_heads, self.n_kv, self.head_dim
        packed = hkv != hq
        if packed:
            q = q.view(1, hkv, hq // hkv, d)
        upcast = q.dtype != torch.float32
        out = F.scaled_dot_product_attention(q.float() if upcast else q, k, v)
        if upcast:
            out = out.to(q.dtype)
        return out.view(1, hq, 1, d)
