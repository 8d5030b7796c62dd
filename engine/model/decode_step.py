"""A CPU's decode passes as single TorchScript calls: the lean path of one-token and B-token passes.

A small model's pass on a CPU is dispatch, not arithmetic: about a hundred torch ops, each
paying Python's argument parsing on top of the dispatcher, which for the tiny random checkpoint is
most of a token's time. `DecodeStep` runs the ops of `NLDModel.forward` with the torch reference
kernels from TorchScript, in the same order on the same dtypes, so its hidden states equal the
eager pass's bit for bit (tests/engine/test_decode_step.py); only the Python between the ops goes,
and with it a few wrappers: `mm` on the transposed weight where `F.linear` calls `t`, `matmul`
and then that `mm`, and one token's embedding row as a view. Like `KVCache.stage` it writes the
chunk's K/V into the slots after the cache and leaves committing to the caller.

`NativeRunner` uses it on a CPU, on float weights fused by `NLDModel.fuse_projections`, for the
passes at the next positions that the modes repeat: AR's one causal token, and causal or
bidirectional chunks of up to `MAX_WIDTH` tokens (diffusion steps, linear self-spec drafts with the
merged adapter and verify passes, copy verification, short prompts). int8 modules, the quadratic
pass (an explicit mask at given positions), per-token adapters and wider prompt chunks run
`NLDModel.forward`. `torch.jit.script` is deprecated since torch 2.13 but still works; where it
fails the runner keeps the eager pass. Measurements: docs/BENCHMARKS.md (issue 22).
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
from kernels.rope_ref import rope_packed

log = logging.getLogger("nemodiff.engine")


MAX_WIDTH = 64  # widest scripted pass: the modes' B-token passes; prompt chunks wider than this stay eager


class DecodeStep:
    """`step(token, cache)`: the final hidden state [1, hidden] of `token` at position `cache.length`;
    `step.chunk(ids, cache, mask)`: those [T, hidden] of a causal or bidirectional chunk."""

    def __init__(self, model: NLDModel):
        self.model = model
        self.dtype = model.encoder.embed_tokens.weight.dtype
        device = model.encoder.embed_tokens.weight.device
        if model.rotary is None or model.rotary.inv_freq.device != device:
            model.rotary = Rotary(model.config, device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
            self.scripted = torch.jit.script(_Pass(model))
        # A draft pass (`lora=True`) is scripted where it is a plain o_proj matmul: the adapter merged
        # into `o_draft` by `fuse_projections` on every layer, or no adapter at all.
        attns = [layer.self_attn for layer in model.encoder.layers]
        self.drafts = all(isinstance(a.o_draft, Tensor) for a in attns) or all(
            a.o_draft is None and a.o_lora is None for a in attns
        )

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
            log.warning("CPU decode passes run eagerly: TorchScript failed (%s)", first_line(e))
            return None

    def fits(self, cache: KVCache, t: int = 1) -> bool:
        """Whether the cache has slots for `t` tokens (else the eager pass raises its "context full")."""
        return cache.length + t <= cache.k.shape[3]

    def __call__(self, token: int, cache: KVCache) -> Tensor:
        cos, sin, q_scale = self.model.rope_tables(cache.length, cache, 1, self.dtype, ops.REFERENCE)
        return self.scripted.forward(token, cache.k, cache.v, cache.length, cos, sin, q_scale)

    def chunk(self, ids: Tensor, cache: KVCache, mask: Optional[Tensor], draft: bool = False) -> Tensor:
        """`ids` [T] (T > 1) at the positions after the cache; `mask` is the pass's [T, cache + T]
        mask (`engine.model.masks`: causal) or None (bidirectional); `draft`: the adapter on every
        token (only where `self.drafts`)."""
        cos, sin, q_scale = self.model.rope_tables(cache.length, cache, len(ids), self.dtype, ops.REFERENCE)
        return self.scripted.chunk(ids, cache.k, cache.v, cache.length, cos, sin, q_scale, mask, draft)


class _Pass(nn.Module):
    """The scripted pass over the model's weights (views, not copies)."""

    def __init__(self, model: NLDModel):
        super().__init__()
        cfg = model.config
        layers = model.encoder.layers
        self.embed = model.encoder.embed_tokens.weight
        self.input_norms = [layer.input_layernorm.weight for layer in layers]
        self.post_norms = [layer.post_attention_layernorm.weight for layer in layers]
        # weights as [in, out] views: `F.linear(x, w)` of T rows is `mm(x, w.t())`
        self.qkv = [layer.self_attn.qkv.t() for layer in layers]
        self.o_proj = [layer.self_attn.o_proj.weight.t() for layer in layers]
        drafts = [layer.self_attn.o_draft for layer in layers]
        self.o_draft = [w.t() for w in drafts] if all(isinstance(w, Tensor) for w in drafts) else self.o_proj
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
        """One token: cos, the signed sine [1, D] and the query scale ([1, 1] or None) are
        `NLDModel.rope_tables`' at position `length`; the embedding row is a view."""
        x = self.embed.narrow(0, token, 1)
        return self._layers(x, k_cache, v_cache, length, cos, sin, q_scale, None, self.o_proj)

    @torch.jit.export
    def chunk(
        self,
        ids: Tensor,
        k_cache: Tensor,
        v_cache: Tensor,
        length: int,
        cos: Tensor,
        sin: Tensor,
        q_scale: Optional[Tensor],
        mask: Optional[Tensor],
        draft: bool,
    ) -> Tensor:
        """T tokens `ids` [T] from position `length`, with the rotary tables of those positions."""
        x = torch.embedding(self.embed, ids)
        o_proj = self.o_draft if draft else self.o_proj
        return self._layers(x, k_cache, v_cache, length, cos, sin, q_scale, mask, o_proj)

    def _layers(
        self,
        x: Tensor,
        k_cache: Tensor,
        v_cache: Tensor,
        length: int,
        cos: Tensor,
        sin: Tensor,
        q_scale: Optional[Tensor],
        mask: Optional[Tensor],
        o_proj: list[Tensor],
    ) -> Tensor:
        """`NLDModel.forward` over the embedded rows x [T, hidden]; each layer's K/V are written
        into the T slots after the cache, as `KVCache.stage` writes them."""
        d, hq, hkv = self.head_dim, self.n_heads, self.n_kv
        t = x.size(0)
        residual: Optional[Tensor] = None
        i = 0
        for qkv_w, o_w, gate_up_w, down_w, norm_in, norm_post in zip(
            self.qkv, o_proj, self.gate_up, self.down, self.input_norms, self.post_norms
        ):
            h, residual = self._norm(x, norm_in, residual)
            qkv = torch.mm(h, qkv_w)  # [1, Hq + 2 Hkv, T, D] (one token's heads need no transpose)
            heads = qkv.view(1, -1, 1, d) if t == 1 else qkv.view(1, t, -1, d).transpose(1, 2)
            qk, v = heads.split_with_sizes([hq + hkv, hkv], dim=1)
            q, k = rope_packed(qk, cos, sin).split_with_sizes([hq, hkv], dim=1)
            if q_scale is not None:
                q = q * q_scale
            k_layer, v_layer = k_cache.select(0, i), v_cache.select(0, i)
            k_layer.narrow(2, length, t).copy_(k)
            v_layer.narrow(2, length, t).copy_(v)
            end = length + t
            o = self._attend(q, k_layer.narrow(2, 0, end), v_layer.narrow(2, 0, end), mask)
            x = torch.mm(o, o_w)
            h, residual = self._norm(x, norm_post, residual)
            gate, up = torch.mm(h, gate_up_w).chunk(2, dim=-1)
            x = torch.mm(F.silu(gate) * up, down_w)
            i += 1
        return self._norm(x, self.final_norm, residual)[0]

    def _norm(self, x: Tensor, weight: Tensor, residual: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        return rms_norm_with(x, weight, self.eps, self.width, residual)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
        """`kernels.attention_ref.attention_ref` over the fp32 cache, as rows [T, Hq * D]: one
        query's grouped heads as a [1, Hkv, group, D] view, T queries with `enable_gqa`;
        half-precision queries attended in fp32."""
        hq, hkv, d = self.n_heads, self.n_kv, self.head_dim
        t = q.size(2)
        packed = t == 1 and hkv != hq
        if packed:
            q = q.view(1, hkv, hq // hkv, d)
        upcast = q.dtype != torch.float32
        out = F.scaled_dot_product_attention(
            q.float() if upcast else q, k, v, attn_mask=mask, enable_gqa=hkv != hq and not packed
        )
        if upcast:
            out = out.to(q.dtype)
        return out.view(1, -1) if t == 1 else out.transpose(1, 2).reshape(t, -1)
