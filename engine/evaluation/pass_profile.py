"""Where a pass's time goes: each pass width the modes use, timed whole and as its weight matmuls
alone, on a loaded engine (`nemodiff bench --profile`).

The ratio of the two is the overhead factor: 1.0 would be a pass that only multiplies by its
weights. A pass also has a floor, the least time this machine can take for it: reading every
weight once at the measured copy bandwidth, or, for wide passes, doing its multiply-adds at the
best rate the matmuls reached in this profile (on a 2-core CPU, where int8 passes of 16 rows or
more are arithmetic-bound, this is what bounds their cost against a one-token pass). The report
gives the floor and the fraction of it each pass reaches.

On a CPU where torch runs one thread (small models: `engine.engine.cpu_threads_for`) the clock is
that thread's CPU time: on a shared machine the wall clock also counts the time other jobs hold
the core (docs/BENCHMARKS.md). Elsewhere it is the wall clock (with a device synchronisation on
a GPU).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from engine.decoding.modes.self_spec import quadratic_pass
from engine.decoding.runner import PREFILL_CHUNK, NativeRunner
from engine.errors import NemodiffError
from engine.model.network import project
from engine.model.quantize import Int8Linear
from kernels.ops import Pattern

ROUNDS = 20
BUDGET_S = 10.0  # fewer rounds (at least 3) where ROUNDS of them would take longer (a big model on a CPU)
CONTEXT = 64  # cached tokens the passes attend over (they only stage theirs: the cache is left as it was)
PREFILL = 256  # the prompt chunk timed: PREFILL_CHUNK is the widest, most prompts are shorter


@dataclass
class PassTiming:
    name: str  # which pass: "ar", "block", "quadratic", "prefill"
    width: int  # tokens in the pass
    pass_ms: float  # the pass and the logits the mode takes from it, best of ROUNDS
    matmul_ms: float  # the same weight matmuls (rows x weights) alone, best of ROUNDS
    overhead: float  # pass_ms / matmul_ms
    clock: str  # "thread" (CPU time of the one torch thread) or "wall"
    floor_ms: float  # max(weight bytes / copy bandwidth, multiply-adds / best matmul rate)
    floor_fraction: float  # floor_ms / pass_ms
    bound: str  # which of the two sets the floor: "bandwidth" or "arithmetic"


def weights(runner: NativeRunner) -> list[tuple[torch.Tensor | torch.nn.Module, int]]:
    """Every matmul weight of a layer pass (fused float tensor or int8 module) with its input width."""
    cfg = runner.model.config
    widths = (cfg.hidden_size, cfg.num_attention_heads * cfg.head_dim, cfg.hidden_size, cfg.intermediate_size)
    return [
        (w, width)
        for layer in runner.model.encoder.layers
        for w, width in zip(
            (layer.self_attn.qkv, layer.self_attn.o_proj, layer.mlp.gate_up, layer.mlp.down_proj), widths
        )
    ]


def weight_bytes(runner: NativeRunner) -> int:
    """Bytes a pass reads from its matmul weights (layers and LM head; the embedding is a lookup)."""
    total = 0
    for w in [w for w, _ in weights(runner)] + [runner.model.diffusion_head]:
        if isinstance(w, Int8Linear):
            total += w.nbytes
        else:  # a tensor, or nn.Linear's parameters
            tensors = [w] if isinstance(w, torch.Tensor) else list(w.parameters())
            total += sum(t.numel() * t.element_size() for t in tensors)
    return total


def multiply_adds(w: torch.Tensor | torch.nn.Module) -> int:
    """Multiply-adds of one input row through weight `w` (its element count)."""
    if isinstance(w, torch.Tensor):
        return w.numel()
    return w.out_features * w.in_features  # nn.Linear, Int8Linear


def copy_bandwidth(device: torch.device, mib: int = 256) -> float:
    """Bytes per second of a copy within the device's memory (read + write), best of a few; on a
    CPU with the threads torch uses, through a buffer far larger than its caches."""
    src = torch.empty(mib << 20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        _sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_gb() -> float | None:
    """This process's peak resident memory so far (None where the OS does not say: Windows)."""
    try:
        import resource
    except ImportError:
        return None
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kib / 2**30 if sys.platform == "darwin" else kib / 2**20


def clock(device: torch.device) -> str:
    """ "thread" (this thread's CPU time: a CPU with one torch thread) or "wall"."""
    return "thread" if device.type == "cpu" and torch.get_num_threads() == 1 else "wall"


def _best_ms(runner: NativeRunner, runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best time of each run over `rounds` rounds that run them all in turn (after one untimed
    round): interleaved, so a busy machine slows them alike."""
    now = time.thread_time if clock(runner.device) == "thread" else time.perf_counter
    best = dict.fromkeys(runs, float("inf"))
    i = 0
    while i <= rounds:
        began = time.perf_counter()
        for name, run in runs.items():
            _sync(runner.device)
            start = now()
            run()
            _sync(runner.device)
            if i:
                best[name] = min(best[name], now() - start)
        if i == 1:
            rounds = min(rounds, max(3, int(BUDGET_S / (time.perf_counter() - began))))
        i += 1
    return {k: v * 1e3 for k, v in best.items()}


def profile_passes(
    runner: NativeRunner,
    block: int,
    mask_id: int,
    rounds: int = ROUNDS,
    context: int = CONTEXT,
    prefill: int | None = None,
) -> list[PassTiming]:
    """Time the AR step (1 token), a block pass (B: a diffusion step, a linear draft or verify), a
    quadratic pass (B(B+1)) and a prefill chunk on `runner`'s model after `context` cached tokens."""
    model = runner.model
    prefill = prefill or min(PREFILL, PREFILL_CHUNK, model.config.max_position_embeddings // 2)
    quad = block * (block + 1)
    runner.reserve(context + max(prefill, quad) + 1, max(prefill, quad))
    runner.crop(0)
    with torch.inference_mode():
        runner.extend([mask_id] * context)
    tokens = [mask_id] * max(prefill, block)
    dtype = model.encoder.embed_tokens.weight.dtype
    head = model.diffusion_head
    layer_weights = weights(runner)  # listed once, not inside the timed runs
    row_macs = sum(multiply_adds(w) for w, _ in layer_weights)

    def matmuls(rows: int, logit_rows: int) -> Callable[[], None]:
        xs = {
            width: torch.randn(rows, width, dtype=dtype, device=runner.device) for _, width in layer_weights
        }
        h = torch.randn(logit_rows, head.in_features, dtype=dtype, device=runner.device)

        @torch.inference_mode()
        def run() -> None:
            for w, width in layer_weights:
                project(xs[width], w)
            project(h, head)

        return run

    @torch.inference_mode()
    def quadratic() -> None:
        hidden, heads = quadratic_pass(runner, tokens[:block], mask_id)
        model.logits(hidden[heads])
        model.logits(hidden[1 : block + 1])

    passes = {  # name: (width, rows through the head, the pass)
        "ar": (1, 1, lambda: runner.logits(runner.forward(tokens[:1], Pattern.CAUSAL))),
        "block": (
            block,
            block,
            lambda: runner.logits(runner.forward(tokens[:block], Pattern.BIDIRECTIONAL)),
        ),
        "quadratic": (quad, 2 * block, quadratic),
        "prefill": (
            prefill,
            1,
            lambda: runner.logits(runner.forward(tokens[:prefill], Pattern.CAUSAL)[-1:]),
        ),
    }
    runs = {name: run for name, (_, _, run) in passes.items()}
    runs |= {f"{name}/matmul": matmuls(width, heads) for name, (width, heads, _) in passes.items()}
    best = _best_ms(runner, runs, rounds)
    runner.crop(0)
    macs = {
        name: width * row_macs + heads * multiply_adds(head) for name, (width, heads, _) in passes.items()
    }
    rate = max(macs[name] / best[f"{name}/matmul"] for name in passes)  # per ms: the widest's, as a rule
    read_ms = weight_bytes(runner) / copy_bandwidth(runner.device) * 1e3
    out = []
    for name, (width, _, _) in passes.items():
        t, mm = best[name], best[f"{name}/matmul"]
        floor = max(read_ms, macs[name] / rate)
        bound = "bandwidth" if floor == read_ms else "arithmetic"
        out.append(PassTiming(name, width, t, mm, t / mm, clock(runner.device), floor, floor / t, bound))
    return out


def profile_engine(engine, rounds: int = ROUNDS, block: int | None = None) -> list[dict]:
    """`profile_passes` for a loaded native Engine at `block` (default: its checkpoint's block
    size), as dicts."""
    if not engine.native:
        raise NemodiffError(
            f"{engine.name} is not an NLD checkpoint: the pass profile needs the native engine"
        )
    passes = profile_passes(
        engine.runner, block or engine.default_block_size, engine.tokenizer.mask_id, rounds
    )
    return [asdict(p) for p in passes]


def table(passes: list[dict]) -> str:
    """A markdown table of `profile_engine`'s passes, each also against the one-token pass."""
    one = passes[0]["pass_ms"]  # the AR step
    lines = [
        "| pass | tokens | ms per pass | x AR step | matmuls alone (ms) | overhead factor"
        " | floor (ms) | floor x AR step | of floor |",
        "|---" * 9 + "|",
    ]
    if passes[0]["clock"] == "thread":
        lines.insert(0, "(times: CPU time of the one torch thread, best of the rounds)\n")
    for p in passes:
        lines.append(
            f"| {p['name']} | {p['width']} | {p['pass_ms']:.3f} | {p['pass_ms'] / one:.2f} | {p['matmul_ms']:.3f}"
            f" | {p['overhead']:.2f} | {p['floor_ms']:.3f} ({p['bound']}) | {p['floor_ms'] / one:.2f}"
            f" | {p['floor_fraction']:.0%} |"
        )
    return "\n".join(lines)
