"""int8 for CPU inference (`--dtype int8`): each projection's and the LM head's weight is stored as
int8 with one scale per output channel; norms, attention and the rest stay bf16.

Why: on a CPU a decode step is bound by reading the weights, and int8 halves the bytes. The
quantized model is built while the checkpoint streams from disk (`int8_weights`), one bf16 tensor at
a time, so a load never holds the bf16 model, in the layout of our int8 GEMM where the model's
shapes fit it (else [out, in]), and each module is made ready for its GEMM as soon as it is made;
engine/loading/int8_cache.py keeps the result for the next load. Every mode runs on the same
quantized weights, so self-speculation stays lossless against AR on them.

The matmul (W8A8 where torch has fbgemm: x86): each input row is rounded to int8 too, with its
own scale (its absmax), and the int8 GEMM sums in int32 and scales once to fp32. Its cost stays
near one read of the weights at every width the modes use (1 to a prompt chunk), where torch's
weight-only kernel costs in proportion to the rows (docs/BENCHMARKS.md, int8 at 3B). fbgemm's own
dynamic linear picks one activation scale for the whole input, so a row's result would depend on
the other rows and a verify pass would not compute what AR's steps compute; here each row is divided
by its scale and the kernel gets fixed qparams, so integer sums make every row's output depend on
that row alone, bit for bit, at any width. Rounding activations to 8 bits is a deviation from the
weight-only reference (docs/REFERENCE_RULES.md). On CPUs with AVX512-VNNI the GEMM is our own
(kernels/int8_gemm_cpu.py): fbgemm's outputs bit for bit, without fbgemm's packing, which took most
of an int8 load, and faster than the weight-only kernel at every model size. Where fbgemm is
missing (ARM, a torch built without quantized ops), and where fbgemm would serve models small
enough to sit in the CPU's caches (`W8A8_MIN_BYTES`), int8 stays weight-only
(`_weight_int8pack_mm`). The path is chosen per model, never mixed within one (a row's result
would then depend on the pass width).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn

from engine.user_cache import cache_dir
from kernels import int8_gemm_cpu

# Weight-only path (no fbgemm). Up to this many rows the int8 kernel: at 3B shapes it beat the fp32
# product of the dequantized weight at 16, 72 and 256 rows (2.7x, 1.09x, 1.19x); wider, that product,
# whose cost is mostly writing and reading the fp32 weight, spread over the rows.
KERNEL_ROWS = 256
KERNEL_ALIGN = 32  # the kernel crashes (it does not raise) on bf16 inputs whose width is not a multiple
KERNEL_ADDRESS_ALIGN = 64  # the kernel crashes on weights whose address is not a multiple (segfault)
_CHUNK_ROWS = 256  # rows quantized at once: their fp32 copy (3 MB at 3B widths) stays in cache for every step
_QUANTIZE_THREADS = 2
# Output channels per fbgemm packed weight. Packing reads the int8 weight down its columns, which
# misses the cache once the rows do not fit: the 3B head (131072 rows) packs 4.6x faster in parts of
# 16384 rows than whole (2.9 s against 13 s), and packing is most of a cached int8 load; the GEMMs
# cost the same. Smaller parts pack faster still, but below glibc's mmap threshold (32 MB) the
# packing's temporaries fragment the heap: 2048-row parts held twice the packed bytes.
PACK_ROWS = 16384
# W8A8 through fbgemm for models with at least this many bytes of int8 weights. Its extra ops cost
# about 20 us a matmul, which reading int8 faster than the weight-only kernel pays back from about
# 0.5 MB a weight: at 3B (3.4 GB, 105 matmuls a pass) W8A8 is faster at every width, while the demo
# model (6.8 MB in 25 matmuls, in cache) steps AR 1.6x faster weight-only. Our GEMM has no such
# cost: it runs W8A8 at every size (the demo model: 1.49 against 1.56 ms a one-token pass, 2.60
# against 5.09 ms a 16-token one, docs/BENCHMARKS.md).
W8A8_MIN_BYTES = 64 << 20


def quantize_rows(
    weight: torch.Tensor,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
    workers: Executor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output channel (row): the int8 weight and the fp32 scales, written into
    `out` when given (an int8 [rows, in] tensor, or the panels of a weight in our GEMM's layout that
    hold these rows, and an fp32 [rows] one), by `workers` (threads) when given.

    Multiplies by the reciprocal scale (a value at a rounding tie may round either way): 1.7x
    faster than dividing. Works through a few rows at a time in an fp32 buffer that stays in the
    CPU's cache from the conversion to the cast, with steps that torch vectorizes for fp32 (in bf16,
    abs/amax and a mixed-dtype multiply cost 3x the whole loop): 0.4 ns per weight on one core, where
    the same steps on whole weights took 15-40 (each wrote and reread a fresh fp32 copy)."""
    weight = weight.detach()
    rows, cols = weight.shape
    q, scale = out if out is not None else (torch.empty(rows, cols, dtype=torch.int8), torch.empty(rows))
    if q.dim() == 4 and weight.dtype == torch.bfloat16 and (gemm := own_gemm()) is not None:
        gemm.quantize_weight(weight, q, scale)  # the same steps in C, into the panels: 2.5x faster
        return q, scale

    def chunk(start: int) -> None:
        part = weight[start : start + _CHUNK_ROWS]
        x = torch.empty(part.shape).copy_(part)  # exact: every bf16 value is an fp32 value
        amax = torch.maximum(x.amax(dim=1), x.amin(dim=1).neg_()).clamp_(min=1e-12)
        x.mul_((127 / amax)[:, None]).round_()
        if q.dim() == 2:
            q[start : start + len(x)].copy_(x)
        else:
            int8_gemm_cpu.write_rows(q, start, x.to(torch.int8))
        torch.div(amax, 127, out=scale[start : start + len(x)])

    for _ in (workers.map if workers is not None else map)(chunk, range(0, rows, _CHUNK_ROWS)):
        pass
    return q, scale


def _prepack(qweight: torch.Tensor, scale: torch.Tensor) -> torch.ScriptObject:
    """fbgemm's packed form of an int8 weight with per-row scales (the int8 values as they are),
    under torch's quantized engine (x86 packs linears for fbgemm; `activation_levels` checks)."""
    with warnings.catch_warnings():  # torch 2.13 deprecates quantized tensors (torch.ao)
        warnings.simplefilter("ignore")
        q = torch._make_per_channel_quantized_tensor(
            qweight, scale.double(), torch.zeros(len(scale), dtype=torch.long), 0
        )
        return torch.ops.quantized.linear_prepack(q, None)


def _w8a8(x: torch.Tensor, packed: list[torch.ScriptObject], levels: int) -> torch.Tensor:
    """fp32 `x @ W.T` by fbgemm (W packed in parts of output channels), each row of `x` rounded to
    int8 with its absmax as the scale: divided by it into [-1, 1], rounded by the kernel to
    `levels` steps either side of a fixed zero point (our GEMM does the same steps in C)."""
    scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    return _fbgemm_product(x / scale, packed, levels) * scale


def _fbgemm_product(x: torch.Tensor, packed: list[torch.ScriptObject], levels: int) -> torch.Tensor:
    """`x @ W.T` by fbgemm for `x` in [-1, 1], rounded to `levels` steps."""
    parts = [
        torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(x, 1 / levels, levels + 1, p)
        for p in packed
    ]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


@functools.cache
def activation_levels() -> int | None:
    """Steps either side of zero the activations are rounded to: 127 (8 bits) where fbgemm's sums
    are exact (AVX512-VNNI: int8 products summed in int32), 63 (7 bits) where it adds pairs of
    products in int16 first and 8-bit inputs would saturate them (AVX2, AVX-512 without VNNI:
    `vpmaddubsw`; 2 x 127 x 127 fits), None without fbgemm (the weight-only path). Found once per
    process by a probe at the worst case (every product 255 x 127)."""
    if torch.backends.quantized.engine not in ("x86", "fbgemm"):  # ARM (qnnpack), or set otherwise
        return None
    try:
        packed = _prepack(torch.full((8, 64), 127, dtype=torch.int8), torch.ones(8))
        out = _fbgemm_product(torch.ones(1, 64), [packed], 127)
    except (RuntimeError, AttributeError):  # no such op or engine in this torch build
        return None
    return 127 if torch.allclose(out, torch.full_like(out, 64 * 127.0)) else 63


@functools.cache
def own_gemm() -> int8_gemm_cpu.Int8Gemm | None:
    """kernels/int8_gemm_cpu.py's GEMM where it runs here (built into the user's cache), unless
    NEMODIFF_INT8_GEMM=fbgemm (to compare the two)."""
    if os.environ.get("NEMODIFF_INT8_GEMM", "auto") == "fbgemm":
        return None
    return int8_gemm_cpu.load(cache_dir() / "kernels")


def w8a8_gemm(levels: int | None, shapes: Iterable[tuple[int, int]]) -> int8_gemm_cpu.Int8Gemm | None:
    """The GEMM for W8A8 at `levels` over weights of these [out, in] shapes: ours where it runs
    and takes 8-bit activations and every shape, else None (fbgemm)."""
    if levels != 127 or not all(int8_gemm_cpu.fits(*shape) for shape in shapes):
        return None
    return own_gemm()


def _plain(qweight: torch.Tensor) -> torch.Tensor:
    """An int8 weight as [out, in]: as it is, or from our GEMM's layout (a copy)."""
    return qweight if qweight.dim() == 2 else int8_gemm_cpu.deinterleave(qweight)


class Int8Linear(nn.Module):
    """`x @ W.T` with W stored as int8 and per-output-channel scales (symmetric): W8A8 with the
    activations rounded to `levels` steps, by `gemm` (ours, W in its layout) or by fbgemm (W
    packed), or weight-only (`levels` None: W as [out, in]). W comes as [out, in] or in our GEMM's
    layout (as the int8 cache keeps it), and is used as it is where the path takes it so (a weight
    mapped from the cache stays mapped), else copied. Every module of a model takes the same path
    (`install_int8`)."""

    def __init__(
        self,
        qweight: torch.Tensor,
        scale: torch.Tensor,
        dtype: torch.dtype,
        levels: int | None,
        gemm: int8_gemm_cpu.Int8Gemm | None = None,
    ):
        super().__init__()
        plain = qweight.shape if qweight.dim() == 2 else int8_gemm_cpu.plain_shape(qweight)
        self.out_features, self.in_features = plain
        self.dtype = dtype  # the activations'
        self.scale = scale.float()  # plain attributes: not part of a checkpoint
        self.levels, self.gemm = levels, gemm
        self.packed, self.qweight, self.interleaved = None, None, None
        if gemm is not None:
            self.interleaved = qweight if qweight.dim() == 4 else int8_gemm_cpu.interleave(qweight)
            self.zero_point_share = gemm.zero_point_shares(self.interleaved)
            self.mult = self.scale * torch.tensor(1 / levels)  # fbgemm's: weight scale x input step
        elif self.levels is not None:
            qweight = _plain(qweight)
            self.packed = [  # a copy: the caller drops the unpacked weight
                _prepack(qweight[i : i + PACK_ROWS], self.scale[i : i + PACK_ROWS])
                for i in range(0, self.out_features, PACK_ROWS)
            ]
        else:
            qweight = _plain(qweight)
            if qweight.data_ptr() % KERNEL_ADDRESS_ALIGN:  # e.g. mapped from a file at an unaligned offset
                qweight = qweight.clone()
            self.qweight, self.kernel_scale = qweight, self.scale.to(dtype)  # the kernel's dtype
            self.scale = self.kernel_scale.float()  # what it multiplies by

    @classmethod
    def quantize(cls, weight: torch.Tensor, dtype: torch.dtype) -> "Int8Linear":
        """Round `weight` to int8 per output channel; `dtype` is the activations'. W8A8 wherever
        fbgemm serves, on our GEMM where it runs (a lone module: no model size to weigh)."""
        q, scale = quantize_rows(weight)
        levels = activation_levels()
        return cls(q.contiguous(), scale, dtype, levels, w8a8_gemm(levels, [tuple(q.shape)]))

    @property
    def nbytes(self) -> int:
        """Bytes a pass reads: the int8 weight and the scales."""
        return self.out_features * self.in_features + self.scale.numel() * 4

    def int8_weight(self) -> torch.Tensor:
        """The int8 weight [out, in]: weight-only's own, else a copy out of our GEMM's layout or
        fbgemm's packing."""
        if self.qweight is not None:
            return self.qweight
        if self.interleaved is not None:
            return _plain(self.interleaved)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.cat([torch.ops.quantized.linear_unpack(p)[0].int_repr() for p in self.packed])

    def rows(self, start: int, stop: int) -> "Int8Rows":
        """The output channels start..stop (a fused weight's part), computed by this module."""
        return Int8Rows(self, start, stop)

    def dequantized(self) -> torch.Tensor:
        """The float weight this module multiplies by (what transformers runs in the bench)."""
        return (self.int8_weight().float() * self.scale[:, None]).to(self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if self.gemm is not None:
            out = self.gemm.matmul(flat, self.interleaved, self.zero_point_share, self.mult).to(x.dtype)
        elif self.packed is not None:
            out = _w8a8(flat.float(), self.packed, self.levels).to(x.dtype)
        elif (
            flat.shape[0] <= KERNEL_ROWS
            and flat.dtype == torch.bfloat16
            and self.in_features % KERNEL_ALIGN == 0
        ):
            out = torch.ops.aten._weight_int8pack_mm(flat.contiguous(), self.qweight, self.kernel_scale)
        else:
            # In fp32, scaled before rounding, as the kernel does: a prompt's K/V must not depend on
            # whether it was computed in one wide pass or in short ones after a cached prefix (bit
            # for bit where both sum in the same order, else within one bf16 step).
            out = (F.linear(flat.float(), self.qweight.float()) * self.kernel_scale.float()).to(flat.dtype)
        return out.view(*x.shape[:-1], self.out_features)


class Int8Rows(nn.Module):
    """Some output channels of a fused `Int8Linear` (q_proj of qkv, ...): the checkpoint's module
    names for `float_state_dict`, without a copy (fbgemm's packed layout cannot be sliced)."""

    def __init__(self, fused: Int8Linear, start: int, stop: int):
        super().__init__()
        self.__dict__["fused"] = fused  # not a submodule: named_modules lists it once, as the fused one
        self.start, self.stop = start, stop
        self.out_features, self.in_features = stop - start, fused.in_features

    def dequantized(self) -> torch.Tensor:
        return self.fused.dequantized()[self.start : self.stop]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fused(x)[..., self.start : self.stop]


def int8_path(model: nn.Module) -> str:
    """What `model`'s int8 matmuls run on: "own" (kernels/int8_gemm_cpu.py), "fbgemm",
    "weight-only", or "" for a float model (auto's kept pass costs hold for one of these)."""
    for module in model.modules():
        if isinstance(module, Int8Linear):
            return "weight-only" if module.levels is None else "fbgemm" if module.gemm is None else "own"
    return ""


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
    """Name, dtype and shape of every tensor `int8_weights` makes for `model`, in its order. The
    int8 weights are in our GEMM's layout where all of them and their parts fit it (the GEMM then
    uses them as they are, mapped from the cache), else [out, in]; that is a fixed property of the
    model's shapes, whatever the CPU."""
    modules = list(_int8_modules(model))
    in_gemm_layout = all(int8_gemm_cpu.fits(*shape) for _, shape, _, _ in modules) and all(
        int8_gemm_cpu.fits(linear.out_features, linear.in_features)
        for layer in model.encoder.layers
        for parts in _FUSED.values()
        for linear in map(layer.get_submodule, parts)
    )
    layout = []
    for name, shape, _, _ in modules:
        stored = int8_gemm_cpu.layout_shape(*shape) if in_gemm_layout else shape
        layout += [(f"{name}.qweight", torch.int8, stored), (f"{name}.scale", torch.float32, shape[:1])]
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


Int8Module = tuple[str, torch.Tensor, torch.Tensor]  # an int8 module's name, int8 weight, fp32 scales


def int8_weights(model: nn.Module, read: Callable[[str], torch.Tensor]) -> Iterator[Int8Module]:
    """Each int8 module of `model` (name, int8 weight, scales), in `int8_layout`'s order, quantized
    from the checkpoint's weights as `read(name)` gives them, one at a time, and given out as soon
    as it is made: the caller installs and caches it while the next ones are quantized. Each part of a
    fused weight (q/k/v, gate/up) is quantized alone, straight into its rows (per-row scales make
    that the fused weight's rounding): no concatenated copies. `model` supplies the shapes and the
    (already loaded) draft adapters.

    Each weight's rows are shared among two threads that run torch on one thread each: the steps
    are short and memory-bound, and on a 2-core CPU shared with other work, torch's own two threads
    waiting for each other at every step ran 2-10x slower than one."""
    # torch's thread count is per OS thread (OpenMP): one each in the workers. But a worker's
    # `set_num_threads` also becomes the count of every thread that has not run torch yet, the caller
    # included: a first int8 load then packed on one thread and ran the model on one (half speed).
    # Asking here fixes the caller's count first; setting it afterwards restores the default.
    threads = torch.get_num_threads()
    # All allocated up front (their pages come as they are written): allocated one by one after
    # others were freed, glibc served the smaller ones from its heap, where their freed pages stayed
    # in the process (a 3B load peaked at 5.3 GB instead of 4.2).
    out = {name: torch.empty(shape, dtype=dtype) for name, dtype, shape in int8_layout(model)}
    one_thread_each = dict(initializer=torch.set_num_threads, initargs=(1,))
    try:
        with ThreadPoolExecutor(_QUANTIZE_THREADS, **one_thread_each) as workers:
            o_proj = None
            for name, _, parts, merge in _int8_modules(model):
                q, scale = out.pop(f"{name}.qweight"), out.pop(f"{name}.scale")
                if merge is not None:  # o_draft: from the o_proj just read (read once for both)
                    quantize_rows(merge(o_proj), (_rows(q, 0, len(scale)), scale), workers)
                    yield name, q, scale
                    continue
                start = 0
                for part in parts:
                    weight = read(part)
                    stop = start + weight.shape[0]
                    quantize_rows(weight, (_rows(q, start, stop), scale[start:stop]), workers)
                    start = stop
                o_proj = weight if name.endswith(".o_proj") else None
                del weight  # before the next read: one checkpoint tensor in memory at a time
                yield name, q, scale
    finally:
        torch.set_num_threads(threads)


def _rows(q: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Output channels start..stop of an int8 weight as `int8_weights` makes it, for
    `quantize_rows` to write: rows of [out, in], or the panels of our GEMM's layout that hold them."""
    if q.dim() == 2:
        return q[start:stop]
    return q[start // int8_gemm_cpu.GROUP : stop // int8_gemm_cpu.GROUP]


def stored_modules(tensors: dict[str, torch.Tensor]) -> Iterator[Int8Module]:
    """The int8 modules in `tensors` as `int8_layout` names them (the int8 cache), each taken out of
    `tensors` as it is given: where a path copies it (fbgemm's packing), its pages can leave once
    copied. ValueError if a scale is missing."""
    for key in [key for key in tensors if key.endswith(".qweight")]:
        name = key.removesuffix(".qweight")
        if f"{name}.scale" not in tensors:
            raise ValueError(f"no tensor {name}.scale")
        yield name, tensors.pop(key), tensors.pop(f"{name}.scale")


def install_int8(model: nn.Module, modules: Iterable[Int8Module], dtype: torch.dtype) -> None:
    """Put the int8 modules into the (meta) model as `Int8Linear`s, fused as
    `NLDModel.fuse_projections` fuses float weights; the parts (q_proj, ...) become views of the
    fused ones. `dtype` is the activations'. Each module is put in its GEMM's layout (a copy:
    interleaved for ours, packed for fbgemm) as it comes, while the next is made: on a first load,
    this overlaps quantizing. A weight and its copy are held together only while it is made.
    Raises ValueError if a module is missing, unknown or misshapen (a stale or damaged cache)."""
    sizes = {name: shape for name, shape, _, _ in _int8_modules(model)}
    size = sum(rows * cols for rows, cols in sizes.values())
    levels = activation_levels()  # one path for the whole model
    gemm = w8a8_gemm(levels, sizes.values())
    if gemm is None and size < W8A8_MIN_BYTES:
        levels = None
    stored = {name: shape for name, _, shape in int8_layout(model)}
    done: dict[str, Future[Int8Linear]] = {}
    # fbgemm's packing is single-threaded and releases the GIL: a thread per core packs 2x faster.
    with ThreadPoolExecutor(torch.get_num_threads()) as pool:
        for name, q, scale in modules:
            shape = stored.get(f"{name}.qweight")
            if shape is None:
                raise ValueError(f"no int8 module {name} in this model")
            if (
                q.dtype != torch.int8
                or tuple(q.shape) != shape
                or tuple(scale.shape) != stored[f"{name}.scale"]
            ):
                raise ValueError(f"{name}: int8 weight of shape {tuple(q.shape)}, expected {shape}")
            done[name] = pool.submit(Int8Linear, q, scale, dtype, levels, gemm)
            del q, scale  # the task holds them until it is done
    if missing := [name for name in sizes if name not in done]:
        raise ValueError(f"no tensor {missing[0]}.qweight")
    model.diffusion_head = done["diffusion_head"].result()
    for i, layer in enumerate(model.encoder.layers):
        prefix = f"encoder.layers.{i}."
        for fused, parts in _FUSED.items():
            owner, _, leaf = fused.rpartition(".")
            setattr(
                layer.get_submodule(owner), leaf, _with_views(done[prefix + fused].result(), layer, parts)
            )
        if prefix + "self_attn.o_draft" in done:
            layer.self_attn.o_draft = done[prefix + "self_attn.o_draft"].result()


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
    dense: dict[int, torch.Tensor] = {}  # each fused weight unpacked once; its parts are row views of it
    for name, module in model.named_modules():
        if isinstance(module, Int8Rows):
            fused, rows = module.fused, slice(module.start, module.stop)
        elif isinstance(module, Int8Linear):
            fused, rows = module, slice(None)
        else:
            continue
        if id(fused) not in dense:
            dense[id(fused)] = fused.dequantized()
        state[f"{name}.weight"] = dense[id(fused)][rows]
    return state
