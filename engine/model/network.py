"""The NLD decoder (Ministral-3 backbone), read top to bottom.

Module names equal the checkpoint's tensor names (`encoder.layers.N.self_attn.q_proj.weight`,
`diffusion_head.weight`), so an NLD `model.safetensors` loads without renaming.

Every forward takes absolute positions and an attention pattern (causal, bidirectional over
[cache + chunk], or an explicit chunk mask); it stages the chunk's K/V after the cache and the
caller decides with `KVCache.commit` whether they stay. Without a cache (training) the
pattern applies to the chunk alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.model.cache import KVCache
from engine.model.config import ModelConfig
from engine.model.rope import Rotary
from kernels import ops
from kernels.ops import Pattern, rope_packed


def project(x: torch.Tensor, weight: torch.Tensor | nn.Module) -> torch.Tensor:
    """`x @ weight.T` for a float weight or an `nn.Linear` (without a module call: a few us each on
    a CPU); a quantized projection (engine/model/quantize.py) is a module of its own."""
    if isinstance(weight, torch.Tensor):
        return F.linear(x, weight)
    if type(weight) is nn.Linear:
        return F.linear(x, weight.weight, weight.bias)
    return weight(x)


class RMSNorm(nn.Module):
    """The norm's weight; `NLDModel.forward` applies it with `ops.rms_norm` (residual add folded in)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps


class LoRA(nn.Module):
    """A low-rank delta `scale * B(A(x))`; NLD's linear-spec adapter sits on o_proj."""

    def __init__(self, d_in: int, d_out: int, rank: int, scale: float):
        super().__init__()
        self.lora_A = nn.Linear(d_in, rank, bias=False)
        self.lora_B = nn.Linear(rank, d_out, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lora_B(self.lora_A(x)) * self.scale

    def merged(self, weight: torch.Tensor) -> torch.Tensor:
        """`weight` with this delta added: one matmul where the adapter would add two."""
        delta = self.lora_B.weight.float() @ self.lora_A.weight.float() * self.scale
        return (weight.float() + delta).to(weight.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        )
        inner = self.n_heads * self.head_dim
        self.widths = [self.n_heads, self.n_kv, self.n_kv]  # heads of q, k, v in the fused projection
        self.packed = [self.n_heads + self.n_kv, self.n_kv]  # q and k heads (rotated together), v heads
        self.q_proj = nn.Linear(cfg.hidden_size, inner, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, self.n_kv * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, self.n_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(inner, cfg.hidden_size, bias=False)
        self.o_lora: LoRA | None = None
        # Inference-only weights (`NLDModel.fuse_projections`): fused q/k/v, and o_proj with the draft
        # adapter merged in; tensors, or int8 modules (`engine.model.quantize.install_int8`).
        self.qkv: torch.Tensor | nn.Module | None = None
        self.o_draft: torch.Tensor | nn.Module | None = None

    def forward(
        self,
        x,
        rope,
        cache: KVCache | None,
        layer: int,
        pattern: Pattern,
        mask,
        lora: bool | torch.Tensor,
        kern,
    ):
        """`rope` is what `NLDModel.rope_tables` prepared for `kern`, the pass's kernels
        (`kernels.ops.kernels_for`)."""
        b, t, _ = x.shape
        if self.qkv is not None:
            qkv = project(x, self.qkv)
        else:  # training: the separate projections, through the same layout
            qkv = torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], dim=-1)
        # [B, Hq + 2 Hkv, T, D] (one token's heads need no transpose)
        heads = (
            qkv.view(b, -1, 1, self.head_dim) if t == 1 else qkv.view(b, t, -1, self.head_dim).transpose(1, 2)
        )
        if kern.triton:
            q, k, v = heads.split_with_sizes(self.widths, dim=1)
            q, k = kern.rope(q, k, *rope)
        else:  # q and k heads rotated together: one set of ops instead of two
            cos, sin, q_scale = rope
            qk, v = heads.split_with_sizes(self.packed, dim=1)
            q, k = rope_packed(qk, cos, sin).split_with_sizes(self.widths[:2], dim=1)
            if q_scale is not None:
                q = q * q_scale
        cache_len = 0
        if cache is not None:
            cache_len = cache.length
            k, v = cache.stage(layer, k, v)
        o = kern.attention(q, k, v, cache_len, pattern, mask)
        o = o.reshape(b, 1, -1) if t == 1 else o.transpose(1, 2).reshape(b, t, -1)
        if lora is True and self.o_draft is not None:
            return project(o, self.o_draft)
        out = project(o, self.o_proj)
        if self.o_lora is not None and lora is not False:
            delta = self.o_lora(o)
            out = out + (delta if lora is True else delta * lora.to(delta.dtype)[:, None])
        return out


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)
        self.gate_up: torch.Tensor | nn.Module | None = None  # fused gate/up weight, like Attention.qkv

    def forward(self, x: torch.Tensor, kern: ops.Kernels) -> torch.Tensor:
        if self.gate_up is not None:
            gate, up = project(x, self.gate_up).chunk(2, dim=-1)
        else:
            gate, up = self.gate_proj(x), self.up_proj(x)
        return project(kern.swiglu(gate, up), self.down_proj)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        weight = torch.empty(cfg.vocab_size, cfg.hidden_size)
        if not weight.is_meta:  # nn.Embedding's own N(0, 1); on the meta device (loading) that
            nn.init.normal_(weight)  # initialisation would import torch._dynamo: a second per load
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, _weight=weight)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class NLDModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.diffusion_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.rotary: Rotary | None = None  # built lazily on the weights' device

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor | int,
        cache: KVCache | None = None,
        pattern: Pattern = Pattern.CAUSAL,
        mask: torch.Tensor | None = None,
        lora: bool | torch.Tensor = False,
    ) -> torch.Tensor:
        """tokens [B, T], positions [T] (or the first of T consecutive ones) -> final hidden states
        [B, T, hidden] (call `logits` on rows you need).

        `lora` switches the linear-spec adapter on for every token, or (a bool [T]) for some tokens.
        `mask` is Pattern.MASK's [T, T] chunk mask, or on the torch path the pass's whole
        [T, cache + T] mask (`engine.model.masks`). The norms are called as functions, not modules:
        a module call costs more than a small op does.
        """
        if self.rotary is None or self.rotary.inv_freq.device != tokens.device:
            self.rotary = Rotary(self.config, tokens.device)
        x = torch.embedding(self.encoder.embed_tokens.weight, tokens)  # (F.embedding: the same, with checks)
        kern = ops.kernels_for(x)
        rope = self.rope_tables(positions, cache, tokens.shape[1], x.dtype, kern)
        residual = None
        eps = self.config.rms_norm_eps
        direct = not self.training  # a module call costs a few us; training's dropout hooks need it
        for i, layer in enumerate(self.encoder.layers):
            attn, mlp = (
                (layer.self_attn.forward, layer.mlp.forward) if direct else (layer.self_attn, layer.mlp)
            )
            h, residual = kern.rms_norm(x, layer.input_layernorm.weight, eps, residual)
            x = attn(h, rope, cache, i, pattern, mask, lora, kern)
            h, residual = kern.rms_norm(x, layer.post_attention_layernorm.weight, eps, residual)
            x = mlp(h, kern)
        return kern.rms_norm(x, self.encoder.norm.weight, eps, residual)[0]

    def rope_tables(self, positions, cache: KVCache | None, t: int, dtype: torch.dtype, kern: ops.Kernels):
        """The pass's rotary tables, rounded to the activations' dtype once (as every layer would
        round them): (cos, sin, query scale) for Triton; for the torch references cos, the signed
        sine of `ops.rope_packed` and the scale as a [T, 1] column (None where it is 1)."""
        bound = cache.k.shape[3] if cache is not None else None
        cos, sin, q_scale = self.rotary(positions, bound, t, signed=not kern.triton)
        if cos.dtype != dtype:
            cos, sin = cos.to(dtype), sin.to(dtype)
        if kern.triton:
            return cos, sin, q_scale
        return cos, sin, None if q_scale is None else q_scale.to(dtype)[:, None]

    @torch.no_grad()
    def fuse_projections(self) -> None:
        """For inference: one matmul for q/k/v and one for gate/up per layer (fewer, larger kernels).
        The original weights become views of the fused ones, so memory is not doubled and
        `state_dict()` keeps the checkpoint's names.

        On a CPU, where every small op costs, a draft adapter is also merged into a second o_proj
        weight that whole-block draft passes use: one matmul instead of three (3 % of a linear
        self-spec cycle for the demo model). A GPU keeps the adapter apart: a merged copy would
        cost another o_proj per layer of its memory (1.2 GB for NLD 8B) to save two tiny kernels.

        fp32 weights on a CPU are stored column-major ([in, out] in memory, the same tensors seen
        transposed): torch's CPU kernel for a one-row fp32 matmul is faster on them than on
        row-major weights (docs/BENCHMARKS.md). transformers' `generate()` in `nemodiff bench`
        shares these tensors, so it gets the same kernels."""
        cpu = self.encoder.embed_tokens.weight.device.type == "cpu"
        column_major = cpu and self.encoder.embed_tokens.weight.dtype == torch.float32
        for layer in self.encoder.layers:
            attn = layer.self_attn
            attn.qkv = _fuse(column_major, attn.q_proj, attn.k_proj, attn.v_proj)
            layer.mlp.gate_up = _fuse(column_major, layer.mlp.gate_proj, layer.mlp.up_proj)
            if column_major:
                for lin in (attn.o_proj, layer.mlp.down_proj):
                    lin.weight = nn.Parameter(_column_major(lin.weight), requires_grad=False)
            if attn.o_lora is not None and cpu:
                attn.o_draft = attn.o_lora.merged(attn.o_proj.weight)
                if column_major:
                    attn.o_draft = _column_major(attn.o_draft)
        if column_major:
            head = self.diffusion_head
            head.weight = nn.Parameter(_column_major(head.weight), requires_grad=False)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """fp32 logits over the full vocabulary, mask token included: confidences are its softmax, as in
        NVIDIA's code; the mask id is kept out of the *choice* only (`Sampler.pick`, `ops.argmax_confidence`)."""
        logits = project(hidden, self.diffusion_head)
        return logits if logits.dtype == torch.float32 else logits.float()

    def new_cache(self, capacity: int, scratch: int | None = None) -> KVCache:
        """A cache for `capacity` tokens plus scratch room for a pass's staged chunk (by default the
        widest at the checkpoint's block size: quadratic, B x (B+1))."""
        cfg, w = self.config, self.encoder.embed_tokens.weight
        scratch = scratch if scratch is not None else cfg.block_size * (cfg.block_size + 1)
        # A CPU attends in fp32 (`kernels.attention_ref`): a half-precision model's K/V are kept in
        # fp32 there, converted once when written, not the whole window at every layer of every pass.
        dtype = torch.float32 if w.device.type == "cpu" else w.dtype
        return KVCache(
            cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim, capacity, scratch, w.device, dtype
        )


def _fuse(column_major: bool, *linears: nn.Linear) -> torch.Tensor:
    fused = torch.cat([lin.weight for lin in linears])
    if column_major:
        fused = _column_major(fused)
    start = 0
    for lin in linears:
        n = lin.out_features
        lin.weight = nn.Parameter(fused[start : start + n], requires_grad=False)
        start += n
    return fused


def _column_major(weight: torch.Tensor) -> torch.Tensor:
    """The same matrix, stored column by column (a copy)."""
    return weight.t().contiguous().t()
