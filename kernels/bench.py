"""Benchmark each Triton kernel against its torch reference at a model's shapes, on one CUDA GPU.

Reports the achieved bandwidth (attention: also TFLOP/s) as a share of the device's peak HBM
bandwidth, and the largest deviation from the reference (a correctness check on real hardware).
The shapes and the two inputs the engine builds (rotary tables, the quadratic mask) come from the
caller: `engine.evaluation.gpu_bench`, behind `nemodiff bench --kernels-bench`, which also times
the whole model's forward. The kernels know nothing of the engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from kernels.attention_ref import Pattern, attention_ref, full_mask
from kernels.rmsnorm_ref import rms_norm_ref
from kernels.rope_ref import rope_ref
from kernels.swiglu_ref import swiglu_ref
from kernels.token_select_ref import accept_length_ref, argmax_confidence_ref

# Peak HBM bandwidth (TB/s) by device-name substring, most specific first.
PEAK_TBS = [("H200", 4.8), ("H100 PCIe", 2.0), ("H100 NVL", 3.9), ("H100", 3.35), ("A100", 2.0)]

Timer = Callable[[Callable[[], object]], float]
Rotary = Callable[
    [torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]
]  # positions -> cos, sin, q scale


class Shapes(Protocol):
    """The model dimensions the kernels are timed at (an `engine.model.config.ModelConfig` has them)."""

    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int


@dataclass
class Setup:
    """What to measure: the model's shapes, the pass lengths, and the inputs built by the engine."""

    cfg: Shapes
    device: torch.device
    dtype: torch.dtype
    chunk: int  # bidirectional chunk length
    rows: int  # quadratic self-speculation rows: T = rows * (rows + 1)
    cache_lens: tuple[int, ...]
    commit_rows: int
    rotary: Rotary
    quadratic_mask: torch.Tensor  # [T, T] bool for T = rows * (rows + 1)


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


def kernel_row(
    name: str,
    shape: str,
    triton_fn,
    torch_fn,
    n_bytes: int,
    timer: Timer,
    peak: float,
    flops: float = 0.0,
    check: Callable[[], float] | None = None,
) -> dict:
    """Time both implementations; `check` (default: compare outputs) runs first, on fresh inputs."""
    err = check() if check is not None else max_err(triton_fn(), torch_fn())
    t_ms, ref_ms = timer(triton_fn), timer(torch_fn)
    return dict(
        kernel=name,
        shape=shape,
        triton_ms=t_ms,
        torch_ms=ref_ms,
        speedup=ref_ms / t_ms,
        gbs=n_bytes / (t_ms * 1e-3) / 1e9,
        peak_pct=100 * n_bytes / (t_ms * 1e-3) / peak,
        tflops=flops / (t_ms * 1e-3) / 1e12 if flops else None,
        max_err=err,
    )


def bench_kernels(s: Setup, timer: Timer, peak: float) -> list[dict]:
    from kernels.attention import attention_triton
    from kernels.rmsnorm import rms_norm_triton
    from kernels.rope import rope_triton
    from kernels.swiglu import swiglu_triton
    from kernels.token_select import accept_length_triton, argmax_confidence_triton

    cfg, dev, dt = s.cfg, s.device, s.dtype
    hq, hkv, d, hidden = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size
    t_quad = s.rows * (s.rows + 1)
    passes = [
        ("decode", 1, Pattern.CAUSAL, None),
        ("chunk", s.chunk, Pattern.BIDIRECTIONAL, None),
        ("quadratic", t_quad, Pattern.MASK, s.quadratic_mask),
    ]
    out: list[dict] = []

    for cache_len in s.cache_lens:
        for label, t, pattern, mask in passes:
            q = torch.randn(1, t, hq, d, device=dev, dtype=dt).transpose(1, 2)
            buf = torch.randn(
                2, 1, hkv, cache_len + t + 64, d, device=dev, dtype=dt
            )  # a cache with room left
            k, v = buf[0, :, :, : cache_len + t], buf[1, :, :, : cache_len + t]
            m = full_mask(pattern, t, cache_len, mask, dev)
            pairs = t * (cache_len + t) if m is None else int(m.sum())
            out.append(
                kernel_row(
                    f"attention {label}",
                    f"T={t} cache={cache_len} {pattern.value}",
                    lambda: attention_triton(q, k, v, cache_len, pattern, mask),
                    lambda: attention_ref(q, k, v, cache_len, pattern, mask),
                    nbytes(q, k, v, q) + (0 if mask is None else mask.numel()),
                    timer,
                    peak,
                    flops=4.0 * hq * d * pairs,
                )
            )

    lengths = sorted({1, s.chunk, t_quad})
    w = torch.ones(hidden, device=dev, dtype=dt)
    for t in lengths:
        x, r = (torch.randn(1, t, hidden, device=dev, dtype=dt) for _ in range(2))
        out.append(
            kernel_row(
                "rmsnorm+residual",
                f"T={t} H={hidden}",
                lambda: rms_norm_triton(x, w, 1e-5, r),
                lambda: rms_norm_ref(x, w, 1e-5, r),
                4 * nbytes(x) + nbytes(w),
                timer,
                peak,
            )
        )

        cos, sin, q_scale = s.rotary(torch.arange(t, device=dev))
        q = torch.randn(1, t, hq, d, device=dev, dtype=dt).transpose(1, 2)
        k = torch.randn(1, t, hkv, d, device=dev, dtype=dt).transpose(1, 2)

        def rope_check() -> float:  # in place: compare on copies before timing keeps rotating q, k
            q2, k2 = q.clone(), k.clone()
            return max_err(rope_triton(q2, k2, cos, sin, q_scale), rope_ref(q, k, cos, sin, q_scale))

        out.append(
            kernel_row(
                "rope (in place)",
                f"T={t} Hq={hq} Hkv={hkv} D={d}",
                lambda: rope_triton(q, k, cos, sin, q_scale),
                lambda: rope_ref(q, k, cos, sin, q_scale),
                2 * nbytes(q, k) + nbytes(cos, sin, q_scale),
                timer,
                peak,
                check=rope_check,
            )
        )

        gate, up = (torch.randn(1, t, cfg.intermediate_size, device=dev, dtype=dt) for _ in range(2))
        out.append(
            kernel_row(
                "swiglu",
                f"T={t} I={cfg.intermediate_size}",
                lambda: swiglu_triton(gate, up),
                lambda: swiglu_ref(gate, up),
                3 * nbytes(gate),
                timer,
                peak,
            )
        )

    for logit_dtype in dict.fromkeys((dt, torch.float32)):  # the engine's `NLDModel.logits` are fp32
        logits = 4 * torch.randn(s.commit_rows, cfg.vocab_size, device=dev, dtype=torch.float32)
        logits = logits.to(logit_dtype)

        def commit_check() -> float:
            (ids, conf), (ref_ids, ref_conf) = (
                argmax_confidence_triton(logits, 7),
                argmax_confidence_ref(logits, 7),
            )
            return float((ids != ref_ids).sum().item()) + max_err(
                conf, ref_conf
            )  # mismatched ids + conf error

        out.append(
            kernel_row(
                "argmax+confidence",
                f"{s.commit_rows}x{cfg.vocab_size} {str(logit_dtype).removeprefix('torch.')}",
                lambda: argmax_confidence_triton(logits, 7),
                lambda: argmax_confidence_ref(logits, 7),
                nbytes(logits),
                timer,
                peak,
                check=commit_check,
            )
        )

    draft = torch.arange(s.rows + 1, device=dev)
    target = draft.clone()
    target[s.rows // 2] = -1
    out.append(
        kernel_row(
            "accept length (+sync)",
            f"n={s.rows + 1}",
            lambda: accept_length_triton(draft, target),
            lambda: accept_length_ref(draft, target),
            nbytes(draft, target),
            timer,
            peak,
            check=lambda: abs(accept_length_triton(draft, target) - accept_length_ref(draft, target)),
        )
    )
    return out


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
    headers = [
        "kernel",
        "shape",
        "triton ms",
        "torch ms",
        "speed-up",
        "GB/s",
        "% peak BW",
        "TFLOP/s",
        "max |err|",
    ]
    return markdown_table(
        headers,
        [
            [
                r["kernel"],
                r["shape"],
                r["triton_ms"],
                r["torch_ms"],
                r["speedup"],
                round(r["gbs"]),
                r["peak_pct"],
                r["tflops"],
                r["max_err"],
            ]
            for r in rows
        ],
    )
