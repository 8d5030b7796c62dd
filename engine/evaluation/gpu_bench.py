"""Benchmark the NLD forward and the Triton kernels on one CUDA GPU: `nemodiff bench --kernels-bench`.

Kernels (`kernels.bench`): each Triton kernel against its torch reference at the 3B model's shapes.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.decoding.modes.self_spec import quadratic_mask
from engine.loading.random_checkpoint import init_std
from engine.model.config import ModelConfig, preset
from engine.model.network import NLDModel
from engine.model.rope import Rotary
from kernels import dispatch
from kernels.bench import Setup as KernelSetup
from kernels.bench import (
    Timer,
    bench_kernels,
    kernel_table,
    make_timer,
    markdown_table,
    nbytes,
    peak_bandwidth,
)
from kernels.ops import Pattern


@dataclass
class Setup:
    """The kernels' setup plus what only the whole model needs."""

    cfg: ModelConfig
    kernels: KernelSetup
    graphs: bool


def make_setup(device: torch.device) -> Setup:
    gpu = device.type == "cuda"
    cfg, rows = preset("3b" if gpu else "tiny"), 32 if gpu else 3
    kernels = KernelSetup(
        cfg,
        device,
        torch.bfloat16 if gpu else torch.float32,
        chunk=32 if gpu else 4,
        rows=rows,
        cache_lens=(512, 4096) if gpu else (8, 40),
        commit_rows=32 if gpu else 4,
        rotary=Rotary(cfg, device),
        quadratic_mask=quadratic_mask(rows, device),
    )
    return Setup(cfg, kernels, graphs=gpu)


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


def bench_model(setup: Setup, timer: Timer, peak: float) -> list[dict]:
    cfg, s = setup.cfg, setup.kernels
    dev = s.device
    model = random_model(cfg, dev, s.dtype)
    t_quad = s.rows * (s.rows + 1)
    cache = model.new_cache(max(s.cache_lens), scratch=t_quad)
    kv_token_bytes = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * s.dtype.itemsize
    # An AR step reads every layer weight once (one embedding row; the LM head is not in forward).
    weight_bytes = sum(
        nbytes(p)
        for name, p in model.named_parameters()
        if not name.startswith(("encoder.embed_tokens", "diffusion_head"))
    )
    passes = [
        ("AR step", 1, Pattern.CAUSAL, None),
        ("chunk", s.chunk, Pattern.BIDIRECTIONAL, None),
        ("quadratic", t_quad, Pattern.MASK, s.quadratic_mask),
    ]
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

                        row = dict(
                            case=label,
                            T=t,
                            cache=cache_len,
                            backend=backend,
                            eager_ms=timer(forward),
                            graph_ms=None,
                        )
                        if setup.graphs:
                            graph = capture(forward)
                            row["graph_ms"] = timer(graph.replay)
                            del graph
                        if t == 1:
                            row["bound_ms"] = (weight_bytes + (cache_len + 1) * kv_token_bytes) / peak * 1e3
                        rows.append(row)
    return rows


def model_table(rows: list[dict]) -> str:
    headers = ["pass", "T", "cache", "kernels", "eager ms", "graph ms", "bound ms", "% of bound (best)"]
    out = []
    for r in rows:
        best = min(x for x in (r["eager_ms"], r["graph_ms"]) if x is not None)
        bound = r.get("bound_ms")
        out.append(
            [
                r["case"],
                r["T"],
                r["cache"],
                r["backend"],
                r["eager_ms"],
                r["graph_ms"],
                bound,
                None if bound is None else 100 * bound / best,
            ]
        )
    return markdown_table(headers, out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nemodiff bench --kernels-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    p.add_argument("--quick", action="store_true", help="fewer timing repetitions")
    p.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cpu: smoke-test the script on the tiny preset under the Triton interpreter",
    )
    p.add_argument("--skip-model", action="store_true", help="kernels only")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "the GPU benchmark needs a CUDA GPU (none found); `--device cpu --quick` smoke-tests the script",
            file=sys.stderr,
        )
        return 1
    if args.device == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"  # read when the Triton kernels are first imported
    device = torch.device(args.device)
    s = make_setup(device)
    timer = make_timer(device, args.quick)
    peak, peak_note = peak_bandwidth(device, timer)
    cfg = s.cfg
    print(
        f"# GPU benchmark: {peak_note}; model {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, "
        f"{cfg.num_attention_heads}/{cfg.num_key_value_heads} heads x {cfg.head_dim}, {s.kernels.dtype}\n"
    )
    kernels = bench_kernels(s.kernels, timer, peak)
    print(kernel_table(kernels) + "\n")
    model = [] if args.skip_model else bench_model(s, timer, peak)
    if model:
        print(model_table(model) + "\n")
    if args.json:
        args.json.write_text(
            json.dumps(dict(device=peak_note, peak_bytes_per_s=peak, kernels=kernels, model=model), indent=2)
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
