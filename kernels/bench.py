"""Benchmark the Triton kernels and the NLD forward on one CUDA GPU: `python -m kernels.bench`.

Kernels: each Triton kernel against its torch reference at the 3B model's shapes, with the
achieved bandwidth (attention: also TFLOP/s) as a share of the device's peak HBM bandwidth, and
the largest deviation from the reference (a correctness check on real hardware).
End to end: ms per forward of a random-weight 3B model (AR step, 32-token bidirectional chunk,
1056-token quadratic self-speculation pass) at two cache lengths, Triton vs torch kernels,
eager vs CUDA graphs; the AR step also as a share of its bandwidth bound (weights + KV / peak).

Prints markdown tables; `--json OUT` also writes every number. `--quick` takes fewer timing
repetitions. `--device cpu --quick` smoke-tests this script on the tiny preset under the Triton
interpreter (its timings mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.config import ModelConfig, preset
from engine.model import NLDModel
from engine.modes.self_spec import quadratic_mask
from engine.random_checkpoint import init_std
from engine.rope import Rotary
from kernels import dispatch
from kernels.attention_ref import Pattern, attention_ref, full_mask
from kernels.commit_ref import accept_length_ref, argmax_confidence_ref
from kernels.rmsnorm_ref import rms_norm_ref
from kernels.rope_ref import rope_ref
from kernels.swiglu_ref import swiglu_ref

# Peak HBM bandwidth (TB/s) by device-name substring, most specific first.
PEAK_TBS = [("H200", 4.8), ("H100 PCIe", 2.0), ("H100 NVL", 3.9), ("H100", 3.35), ("A100", 2.0)]

Timer = Callable[[Callable[[], object]], float]


@dataclass
class Setup:
    """What to measure: the model's shapes and the pass lengths."""

    cfg: ModelConfig
    device: torch.device
    dtype: torch.dtype
    chunk: int  # bidirectional chunk length
    rows: int  # quadratic self-speculation rows: T = rows * (rows + 1)
    cache_lens: tuple[int, ...]
    commit_rows: int
    graphs: bool


def make_setup(device: torch.device) -> Setup:
    if device.type == "cuda":
        return Setup(preset("3b"), device, torch.bfloat16, chunk=32, rows=32, cache_lens=(512, 4096),
                     commit_rows=32, graphs=True)
    return Setup(preset("tiny"), device, torch.float32, chunk=4, rows=3, cache_lens=(8, 40), commit_rows=4,
                 graphs=False)


def make_timer(device: torch.device, quick: bool) -> Timer:
    """Mean ms per call: `triton.testing.do_bench` on CUDA (L2 flushed between calls), wall clock on CPU."""
    if device.type == "cuda":
        from triton.testing import do_bench

        warmup, rep = (5, 25) if quick else (25, 100)
        return lambda fn: do_bench(fn, warmup=warmup, rep=rep)

    def wall(fn: Callable[[], object]) -> float:
        fn()
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3

    return wall


def peak_bandwidth(device: torch.device, timer: Timer) -> tuple[float, str]:
    """Peak bytes/s from the spec table, else measured with a large device copy."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    for key, tbs in PEAK_TBS:
        if key in name:
            return tbs * 1e12, f"{name}: spec {tbs} TB/s"
    src = torch.empty(1 << (28 if device.type == "cuda" else 24), dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    bw = 2 * src.numel() / (timer(lambda: dst.copy_(src)) * 1e-3)
    return bw, f"{name}: measured copy {bw / 1e9:.0f} GB/s"


def nbytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def max_err(got, want) -> float:
    """Largest absolute deviation over (tuples of) tensors, in fp32."""
    if isinstance(got, torch.Tensor):
        got, want = (got,), (want,)
    return max((g.float() - w.float()).abs().max().item() if g.numel() else 0.0 for g, w in zip(got, want))


def kernel_row(name: str, shape: str, triton_fn, torch_fn, n_bytes: int, timer: Timer, peak: float,
               flops: float = 0.0, check: Callable[[], float] | None = None) -> dict:
    """Time both implementations; `check` (default: compare outputs) runs first, on fresh inputs."""
    err = check() if check is not None else max_err(triton_fn(), torch_fn())
    t_ms, ref_ms = timer(triton_fn), timer(torch_fn)
    return dict(kernel=name, shape=shape, triton_ms=t_ms, torch_ms=ref_ms, speedup=ref_ms / t_ms,
                gbs=n_bytes / (t_ms * 1e-3) / 1e9, peak_pct=100 * n_bytes / (t_ms * 1e-3) / peak,
                tflops=flops / (t_ms * 1e-3) / 1e12 if flops else None, max_err=err)


def bench_kernels(s: Setup, timer: Timer, peak: float) -> list[dict]:
    from kernels.attention import attention_triton
    from kernels.commit import accept_length_triton, argmax_confidence_triton
    from kernels.rmsnorm import rms_norm_triton
    from kernels.rope import rope_triton
    from kernels.swiglu import swiglu_triton

    cfg, dev, dt = s.cfg, s.device, s.dtype
    hq, hkv, d, hidden = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size
    t_quad = s.rows * (s.rows + 1)
    passes = [("decode", 1, Pattern.CAUSAL, None), ("chunk", s.chunk, Pattern.BIDIRECTIONAL, None),
              ("quadratic", t_quad, Pattern.MASK, quadratic_mask(s.rows, dev))]
    out: list[dict] = []

    for cache_len in s.cache_lens:
        for label, t, pattern, mask in passes:
            q = torch.randn(1, t, hq, d, device=dev, dtype=dt).transpose(1, 2)
            buf = torch.randn(2, 1, hkv, cache_len + t + 64, d, device=dev, dtype=dt)  # a cache with room left
            k, v = buf[0, :, :, : cache_len + t], buf[1, :, :, : cache_len + t]
            m = full_mask(pattern, t, cache_len, mask, dev)
            pairs = t * (cache_len + t) if m is None else int(m.sum())
            out.append(kernel_row(
                f"attention {label}", f"T={t} cache={cache_len} {pattern.value}",
                lambda: attention_triton(q, k, v, cache_len, pattern, mask),
                lambda: attention_ref(q, k, v, cache_len, pattern, mask),
                nbytes(q, k, v, q) + (0 if mask is None else mask.numel()), timer, peak, flops=4.0 * hq * d * pairs))

    lengths = sorted({1, s.chunk, t_quad})
    rotary = Rotary(cfg, dev)
    w = torch.ones(hidden, device=dev, dtype=dt)
    for t in lengths:
        x, r = (torch.randn(1, t, hidden, device=dev, dtype=dt) for _ in range(2))
        out.append(kernel_row("rmsnorm+residual", f"T={t} H={hidden}", lambda: rms_norm_triton(x, w, 1e-5, r),
                              lambda: rms_norm_ref(x, w, 1e-5, r), 4 * nbytes(x) + nbytes(w), timer, peak))

        cos, sin, q_scale = rotary(torch.arange(t, device=dev))
        q = torch.randn(1, t, hq, d, device=dev, dtype=dt).transpose(1, 2)
        k = torch.randn(1, t, hkv, d, device=dev, dtype=dt).transpose(1, 2)

        def rope_check() -> float:  # in place: compare on copies before timing keeps rotating q, k
            q2, k2 = q.clone(), k.clone()
            return max_err(rope_triton(q2, k2, cos, sin, q_scale), rope_ref(q, k, cos, sin, q_scale))

        out.append(kernel_row("rope (in place)", f"T={t} Hq={hq} Hkv={hkv} D={d}",
                              lambda: rope_triton(q, k, cos, sin, q_scale), lambda: rope_ref(q, k, cos, sin, q_scale),
                              2 * nbytes(q, k) + nbytes(cos, sin, q_scale), timer, peak, check=rope_check))

        gate, up = (torch.randn(1, t, cfg.intermediate_size, device=dev, dtype=dt) for _ in range(2))
        out.append(kernel_row("swiglu", f"T={t} I={cfg.intermediate_size}", lambda: swiglu_triton(gate, up),
                              lambda: swiglu_ref(gate, up), 3 * nbytes(gate), timer, peak))

    for logit_dtype in dict.fromkeys((dt, torch.float32)):  # the engine's `NLDModel.logits` are fp32
        logits = 4 * torch.randn(s.commit_rows, cfg.vocab_size, device=dev, dtype=torch.float32)
        logits = logits.to(logit_dtype)

        def commit_check() -> float:
            (ids, conf), (ref_ids, ref_conf) = argmax_confidence_triton(logits, 7), argmax_confidence_ref(logits, 7)
            return float((ids != ref_ids).sum().item()) + max_err(conf, ref_conf)  # mismatched ids + conf error

        out.append(kernel_row(
            "argmax+confidence", f"{s.commit_rows}x{cfg.vocab_size} {str(logit_dtype).removeprefix('torch.')}",
            lambda: argmax_confidence_triton(logits, 7), lambda: argmax_confidence_ref(logits, 7),
            nbytes(logits), timer, peak, check=commit_check))

    draft = torch.arange(s.rows + 1, device=dev)
    target = draft.clone()
    target[s.rows // 2] = -1
    out.append(kernel_row("accept length (+sync)", f"n={s.rows + 1}", lambda: accept_length_triton(draft, target),
                          lambda: accept_length_ref(draft, target), nbytes(draft, target), timer, peak,
                          check=lambda: abs(accept_length_triton(draft, target) - accept_length_ref(draft, target))))
    return out


def random_model(cfg: ModelConfig, device: torch.device, dtype: torch.dtype) -> NLDModel:
    """The model allocated straight in `dtype` on `device` (no fp32 copy, no file), with the weights
    `nemodiff random-checkpoint` writes (ones for the norms, normal(0, init_std) for the matrices);
    projections fused as `engine.Engine` fuses them."""
    with torch.device("meta"):
        model = NLDModel(cfg)
    model = model.to(dtype).to_empty(device=device).eval().requires_grad_(False)
    for p in model.parameters():
        if p.dim() == 1:
            p.fill_(1.0)
        else:
            p.normal_(0.0, init_std(p.shape[1]))
    model.fuse_projections()
    return model


def capture(fn: Callable[[], torch.Tensor]) -> torch.cuda.CUDAGraph:
    """A CUDA graph of `fn` after warm-up on a side stream (compiles kernels, sets up cuBLAS)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph


def bench_model(s: Setup, timer: Timer, peak: float) -> list[dict]:
    cfg, dev = s.cfg, s.device
    model = random_model(cfg, dev, s.dtype)
    t_quad = s.rows * (s.rows + 1)
    cache = model.new_cache(max(s.cache_lens), scratch=t_quad)
    kv_token_bytes = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * s.dtype.itemsize
    # An AR step reads every layer weight once (one embedding row; the LM head is not in forward).
    weight_bytes = sum(nbytes(p) for name, p in model.named_parameters()
                       if not name.startswith(("encoder.embed_tokens", "diffusion_head")))
    passes = [("AR step", 1, Pattern.CAUSAL, None), ("chunk", s.chunk, Pattern.BIDIRECTIONAL, None),
              ("quadratic", t_quad, Pattern.MASK, quadratic_mask(s.rows, dev))]
    gen = torch.Generator(device=dev).manual_seed(0)
    rows: list[dict] = []
    with torch.inference_mode():
        for backend in ("triton", "torch"):
            with dispatch.using(backend):
                for cache_len in s.cache_lens:
                    cache.reset()
                    cache.commit(cache_len)  # contents do not matter for timing
                    for label, t, pattern, mask in passes:
                        tokens = torch.randint(0, cfg.vocab_size, (1, t), device=dev, generator=gen)
                        positions = torch.arange(cache_len, cache_len + t, device=dev)

                        def forward() -> torch.Tensor:
                            return model(tokens, positions, cache, pattern, mask)

                        row = dict(case=label, T=t, cache=cache_len, backend=backend, eager_ms=timer(forward),
                                   graph_ms=None)
                        if s.graphs:
                            graph = capture(forward)
                            row["graph_ms"] = timer(graph.replay)
                            del graph
                        if t == 1:
                            row["bound_ms"] = (weight_bytes + (cache_len + 1) * kv_token_bytes) / peak * 1e3
                        rows.append(row)
    return rows


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3f}" if x == 0 or 1e-3 <= abs(x) < 1e4 else f"{x:.3g}"
    return str(x)


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def kernel_table(rows: list[dict]) -> str:
    headers = ["kernel", "shape", "triton ms", "torch ms", "speed-up", "GB/s", "% peak BW", "TFLOP/s", "max |err|"]
    return markdown_table(headers, [[r["kernel"], r["shape"], r["triton_ms"], r["torch_ms"], r["speedup"],
                                     round(r["gbs"]), r["peak_pct"], r["tflops"], r["max_err"]] for r in rows])


def model_table(rows: list[dict]) -> str:
    headers = ["pass", "T", "cache", "kernels", "eager ms", "graph ms", "bound ms", "% of bound (best)"]
    out = []
    for r in rows:
        best = min(x for x in (r["eager_ms"], r["graph_ms"]) if x is not None)
        bound = r.get("bound_ms")
        out.append([r["case"], r["T"], r["cache"], r["backend"], r["eager_ms"], r["graph_ms"], bound,
                    None if bound is None else 100 * bound / best])
    return markdown_table(headers, out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    p.add_argument("--quick", action="store_true", help="fewer timing repetitions")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cpu: smoke-test the script on the tiny preset under the Triton interpreter")
    p.add_argument("--skip-model", action="store_true", help="kernels only")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("kernels.bench needs a CUDA GPU (none found); `--device cpu --quick` smoke-tests the script",
              file=sys.stderr)
        return 1
    if args.device == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"  # read when the Triton kernels are first imported
    device = torch.device(args.device)
    s = make_setup(device)
    timer = make_timer(device, args.quick)
    peak, peak_note = peak_bandwidth(device, timer)
    print(f"# kernels.bench: {peak_note}; model {s.cfg.num_hidden_layers} layers, hidden {s.cfg.hidden_size}, "
          f"{s.cfg.num_attention_heads}/{s.cfg.num_key_value_heads} heads x {s.cfg.head_dim}, {s.dtype}\n")
    kernels = bench_kernels(s, timer, peak)
    print(kernel_table(kernels) + "\n")
    model = [] if args.skip_model else bench_model(s, timer, peak)
    if model:
        print(model_table(model) + "\n")
    if args.json:
        args.json.write_text(json.dumps(dict(device=peak_note, peak_bytes_per_s=peak, kernels=kernels, model=model),
                                        indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
