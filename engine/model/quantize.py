"""Weight-only int8 for CPU inference (`--dtype int8`): each projection's and the LM head's weight
is stored as int8 with one scale per output channel; activations, norms and attention stay bf16.

Why: on a CPU a decode step is bound by its matmuls, and for a few rows torch's int8 kernel
(`_weight_int8pack_mm`, the one gpt-fast's int8 mode uses) is several times faster than a bf16
matmul (docs/BENCHMARKS.md, int8). That kernel costs in proportion to its rows, so passes wider than
`INT8_ROWS` (prompts, quadratic self-spec) multiply by the dequantized weight in fp32 instead,
and so do fp32 activations, which the kernel handles ten times slower than bf16 ones. Every mode
runs on the same quantized weights, so self-speculation stays lossless against AR on them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INT8_ROWS = 8  # the int8 kernel beats bf16 up to about 12 rows on this machine; 8 is one draft block
KERNEL_ALIGN = 32  # the kernel crashes (it does not raise) on bf16 inputs whose width is not a multiple


class Int8Linear(nn.Module):
    """`x @ W.T` with W stored as int8 [out, in] and per-output-channel scales (symmetric)."""

    def __init__(self, qweight: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.out_features, self.in_features = qweight.shape
        self.qweight, self.scale = qweight, scale  # plain attributes: not part of a checkpoint

    @classmethod
    def quantize(cls, weight: torch.Tensor, dtype: torch.dtype) -> "Int8Linear":
        """Round `weight` to int8 per output channel; `dtype` is the activations' (and scales') dtype."""
        w = weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127
        q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
        return cls(q.contiguous(), scale.to(dtype))

    def rows(self, start: int, stop: int) -> "Int8Linear":
        """The output channels start..stop, sharing this module's storage (a fused weight's part)."""
        return Int8Linear(self.qweight[start:stop], self.scale[start:stop])

    def dequantized(self) -> torch.Tensor:
        """The float weight this module multiplies by (what transformers runs in the bench)."""
        return (self.qweight.float() * self.scale.float()[:, None]).to(self.scale.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if flat.shape[0] <= INT8_ROWS and flat.dtype == torch.bfloat16 and self.in_features % KERNEL_ALIGN == 0:
            out = torch.ops.aten._weight_int8pack_mm(flat.contiguous(), self.qweight, self.scale.to(flat.dtype))
        else:
            # In fp32, scaled before rounding, as the kernel does: a prompt's K/V must not depend on
            # whether it was computed in one wide pass or in short ones after a cached prefix (bit
            # for bit where both sum in the same order, else within one bf16 step).
            out = (F.linear(flat.float(), self.qweight.float()) * self.scale.float()).to(flat.dtype)
        return out.view(*x.shape[:-1], self.out_features)


def quantize_int8(model: nn.Module) -> None:
    """Replace every matmul weight with an `Int8Linear`, after `fuse_projections`: the fused q/k/v
    and gate/up weights, o_proj, its merged draft copy, down_proj and the LM head. The parts of a
    fused weight become views of its int8 copy, so no float copy stays alive. The embedding (a
    lookup, not a matmul), the norms and a separate draft adapter stay float."""
    dtype = model.encoder.embed_tokens.weight.dtype
    for layer in model.encoder.layers:
        attn, mlp = layer.self_attn, layer.mlp
        attn.qkv = _fused(attn.qkv, dtype, attn, ("q_proj", "k_proj", "v_proj"))
        mlp.gate_up = _fused(mlp.gate_up, dtype, mlp, ("gate_proj", "up_proj"))
        attn.o_proj = Int8Linear.quantize(attn.o_proj.weight, dtype)
        if attn.o_draft is not None:
            attn.o_draft = Int8Linear.quantize(attn.o_draft, dtype)
        mlp.down_proj = Int8Linear.quantize(mlp.down_proj.weight, dtype)
    model.diffusion_head = Int8Linear.quantize(model.diffusion_head.weight, dtype)


def _fused(weight: torch.Tensor, dtype: torch.dtype, owner: nn.Module, parts: tuple[str, ...]) -> Int8Linear:
    fused = Int8Linear.quantize(weight, dtype)
    start = 0
    for name in parts:
        n = getattr(owner, name).out_features
        setattr(owner, name, fused.rows(start, start + n))
        start += n
    return fused


def float_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """`model.state_dict()` with each int8 module's dequantized weight as `<name>.weight`: the
    weights a float implementation needs to compute what the quantized model computes."""
    state = model.state_dict()
    for name, module in model.named_modules():
        if isinstance(module, Int8Linear):
            state[f"{name}.weight"] = module.dequantized()
    return state
