"""Weight-only int8 for CPU inference (`--dtype int8`): each projection's and the LM head's weight
is stored as int8 with one scale per output channel; activations, norms and attention stay bf16.

Why: on a CPU a decode step is bound by reading the weights, and int8 halves the bytes. The
quantized model is built while the checkpoint streams from disk (`int8_weights`), one bf16 tensor
at a time, so a load never holds the bf16 model; engine/loading/int8_cache.py keeps the result for the
next load. Every mode runs on the same quantized weights, so self-speculation stays lossless
against AR on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn

# Up to this many rows (every pass but a long prompt's chunks) the int8 kernel: at 3B shapes it beat
# the fp32 product of the dequantized weight at 16, 72 and 256 rows (2.7x, 1.09x, 1.19x); wider, that
# product, whose cost is mostly writing and reading the fp32 weight, spread over the rows
# (docs/BENCHMARKS.md, NLD-3B shapes).
KERNEL_ROWS = 256
KERNEL_ALIGN = 32  # the kernel crashes (it does not raise) on bf16 inputs whose width is not a multiple
KERNEL_ADDRESS_ALIGN = 64  # the kernel crashes on weights whose address is not a multiple (segfault)
_CHUNK_ROWS = 256  # rows quantized at once: their fp32 copy (3 MB at 3B widths) stays in cache for every step
_QUANTIZE_THREADS = 2


def quantize_rows(
    weight: torch.Tensor,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
    workers: Executor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output channel (row): the int8 weight and the fp32 scales, written into
    `out` (an int8 [rows, in] and an fp32 [rows] tensor, e.g. rows of a fused weight) when given,
    by `workers` (threads) when given.

    Multiplies by the reciprocal scale (a value at a rounding tie may round either way): 1.7x
    faster than dividing. Works through a few rows at a time in an fp32 buffer that stays in the
    CPU's cache from the conversion to the cast, with steps that torch vectorizes for fp32 (in bf16,
    abs/amax and a mixed-dtype multiply cost 3x the whole loop): 0.4 ns per weight on one core, where
    the same steps on whole weights took 15-40 (each wrote and reread a fresh fp32 copy)."""
    weight = weight.detach()
    rows, cols = weight.shape
    q, scale = out if out is not None else (torch.empty(rows, cols, dtype=torch.int8), torch.empty(rows))

    def chunk(start: int) -> None:
        part = weight[start : start + _CHUNK_ROWS]
        x = torch.empty(part.shape).copy_(part)  # exact: every bf16 value is an fp32 value
        amax = torch.maximum(x.amax(dim=1), x.amin(dim=1).neg_()).clamp_(min=1e-12)
        q[start : start + len(x)].copy_(x.mul_((127 / amax)[:, None]).round_())
        torch.div(amax, 127, out=scale[start : start + len(x)])

    for _ in (workers.map if workers is not None else map)(chunk, range(0, rows, _CHUNK_ROWS)):
        pass
    return q, scale


class Int8Linear(nn.Module):
    """`x @ W.T` with W stored as int8 [out, in] and per-output-channel scales (symmetric)."""

    def __init__(self, qweight: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.out_features, self.in_features = qweight.shape
        self.qweight, self.scale = qweight, scale  # plain attributes: not part of a checkpoint

    @classmethod
    def quantize(cls, weight: torch.Tensor, dtype: torch.dtype) -> "Int8Linear":
        """Round `weight` to int8 per output channel; `dtype` is the activations' (and scales') dtype."""
        q, scale = quantize_rows(weight)
        return cls(q.contiguous(), scale.to(dtype))

    def rows(self, start: int, stop: int) -> "Int8Linear":
        """The output channels start..stop, sharing this module's storage (a fused weight's part)."""
        return Int8Linear(self.qweight[start:stop], self.scale[start:stop])

    def dequantized(self) -> torch.Tensor:
        """The float weight this module multiplies by (what transformers runs in the bench)."""
        return (self.qweight.float() * self.scale.float()[:, None]).to(self.scale.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if (
            flat.shape[0] <= KERNEL_ROWS
            and flat.dtype == torch.bfloat16
            and self.in_features % KERNEL_ALIGN == 0
        ):
            out = torch.ops.aten._weight_int8pack_mm(
                flat.contiguous(), self.qweight, self.scale.to(flat.dtype)
            )
        else:
            # In fp32, scaled before rounding, as the kernel does: a prompt's K/V must not depend on
            # whether it was computed in one wide pass or in short ones after a cached prefix (bit
            # for bit where both sum in the same order, else within one bf16 step).
            out = (F.linear(flat.float(), self.qweight.float()) * self.scale.float()).to(flat.dtype)
        return out.view(*x.shape[:-1], self.out_features)


def is_matmul_weight(name: str) -> bool:
    """The checkpoint tensors int8 stores quantized: projections and the head (not the embedding,
    a lookup, nor norms or the draft adapter's small factors)."""
    return name.endswith("_proj.weight") or name == "diffusion_head.weight"


# The fused int8 weights of one layer, and the checkpoint weights each fuses (in order).
_FUSED = {
    "self_attn.qkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "mlp.gate_up": ("mlp.gate_proj", "mlp.up_proj"),
    "self_attn.o_proj": ("self_attn.o_proj",),
    "mlp.down_proj": ("mlp.down_proj",),
}


Merge = Callable[[torch.Tensor], torch.Tensor]  # a draft adapter merged into o_proj's weight


def int8_layout(model: nn.Module) -> list[tuple[str, torch.dtype, tuple[int, ...]]]:
    """Name, dtype and shape of every tensor `int8_weights` makes for `model`, in its order."""
    layout = []
    for name, shape, _, _ in _int8_modules(model):
        layout += [(f"{name}.qweight", torch.int8, shape), (f"{name}.scale", torch.float32, shape[:1])]
    return layout


def _int8_modules(model: nn.Module) -> Iterator[tuple[str, tuple[int, int], tuple[str, ...], Merge | None]]:
    """(int8 module name, its [out, in], the checkpoint weights it fuses in order, or for o_proj's
    draft copy `o_draft` none but the adapter's merge of the o_proj just read): the head first (the
    largest read), then per layer the fused q/k/v and gate/up, o_proj and o_draft (where the model
    has an adapter), down_proj."""
    head = model.diffusion_head
    yield "diffusion_head", (head.out_features, head.in_features), ("diffusion_head.weight",), None
    for i, layer in enumerate(model.encoder.layers):
        prefix = f"encoder.layers.{i}."
        for fused, parts in _FUSED.items():
            linears = [layer.get_submodule(part) for part in parts]
            shape = (sum(lin.out_features for lin in linears), linears[0].in_features)
            yield prefix + fused, shape, tuple(f"{prefix}{part}.weight" for part in parts), None
            if fused == "self_attn.o_proj" and layer.self_attn.o_lora is not None:
                yield prefix + "self_attn.o_draft", shape, (), layer.self_attn.o_lora.merged


def int8_weights(model: nn.Module, read: Callable[[str], torch.Tensor]) -> dict[str, torch.Tensor]:
    """The int8 model's matmul tensors, `<module>.qweight` (int8) and `<module>.scale` (fp32), as
    `int8_layout` lists them, from the checkpoint's weights as `read(name)` gives them, one at a
    time. Each part of a fused weight (q/k/v, gate/up) is quantized alone, straight into its rows
    (per-row scales make that the fused weight's rounding): no concatenated copies. `model`
    supplies the shapes and the (already loaded) draft adapters.

    Each weight's rows are shared among two threads that run torch on one thread each: the steps
    are short and memory-bound, and on a 2-core CPU shared with other work, torch's own two threads
    waiting for each other at every step ran 2-10x slower than one."""
    out = {name: torch.empty(shape, dtype=dtype) for name, dtype, shape in int8_layout(model)}
    # torch's thread count is per OS thread (OpenMP): one each in the workers, the caller's unchanged.
    with ThreadPoolExecutor(_QUANTIZE_THREADS, initializer=torch.set_num_threads, initargs=(1,)) as workers:
        o_proj = None
        for name, _, parts, merge in _int8_modules(model):
            q, scale = out[f"{name}.qweight"], out[f"{name}.scale"]
            if merge is not None:  # o_draft: from the o_proj just read (read once for both)
                quantize_rows(merge(o_proj), (q, scale), workers)
                continue
            start = 0
            for part in parts:
                weight = read(part)
                stop = start + weight.shape[0]
                quantize_rows(weight, (q[start:stop], scale[start:stop]), workers)
                start = stop
            o_proj = weight if name.endswith(".o_proj") else None
            del weight  # before the next read: one checkpoint tensor in memory at a time
    return out


def install_int8(model: nn.Module, tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> None:
    """Put `int8_weights`' tensors into the (meta) model as `Int8Linear`s, fused as
    `NLDModel.fuse_projections` fuses float weights; the parts (q_proj, ...) become views of the
    fused ones. `dtype` is the activations'. Raises ValueError if a tensor is missing or misshapen
    (a stale or damaged cache)."""

    def module(name: str, shape: tuple[int, int]) -> Int8Linear:
        q, scale = tensors[f"{name}.qweight"], tensors[f"{name}.scale"]
        if q.dtype != torch.int8 or tuple(q.shape) != shape or tuple(scale.shape) != shape[:1]:
            raise ValueError(f"{name}: int8 weight of shape {tuple(q.shape)}, expected {shape}")
        if q.data_ptr() % KERNEL_ADDRESS_ALIGN:  # a tensor mapped from a file at an unaligned offset
            q = q.clone()
        return Int8Linear(q, scale.to(dtype))

    try:
        head = model.diffusion_head
        model.diffusion_head = module("diffusion_head", (head.out_features, head.in_features))
        for i, layer in enumerate(model.encoder.layers):
            prefix = f"encoder.layers.{i}."
            for fused, parts in _FUSED.items():
                linears = [layer.get_submodule(part) for part in parts]
                owner, _, leaf = fused.rpartition(".")
                shape = (sum(lin.out_features for lin in linears), linears[0].in_features)
                setattr(
                    layer.get_submodule(owner), leaf, _with_views(module(prefix + fused, shape), layer, parts)
                )
            attn = layer.self_attn
            if attn.o_lora is not None:
                attn.o_draft = module(
                    prefix + "self_attn.o_draft", (attn.o_proj.out_features, attn.o_proj.in_features)
                )
    except KeyError as e:
        raise ValueError(f"no tensor {e.args[0]}") from None


def _with_views(fused: Int8Linear, layer: nn.Module, parts: tuple[str, ...]) -> Int8Linear:
    """Set each part's module to its rows of `fused`; returns `fused`."""
    start = 0
    for part in parts:
        owner, _, leaf = part.rpartition(".")
        n = layer.get_submodule(part).out_features
        setattr(layer.get_submodule(owner), leaf, fused.rows(start, start + n))
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
