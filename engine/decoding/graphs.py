"""CUDA graphs for the passes decoding repeats: one graph per (pass, cache bucket), captured the
first time that pass runs at that bucket and replayed after, as nano-vllm does for decode.

An eager pass on a GPU launches a few hundred kernels, and at batch 1 launching them costs about
what running them does. A graph needs fixed shapes and addresses, so a captured pass
* reads its inputs from static buffers (token ids, the cache length, positions, the chunk mask
  and the adapter switch), copied in before each replay;
* writes its K/V into the cache at slots computed on the device from the length;
* attends over a fixed window of the cache, a power-of-two bucket of keys, through a mask built on
  the device that hides the keys past the chunk (attention then runs the torch reference, whose
  mask can be any window: the Triton kernel takes the cache length as a launch argument).

Passes are keyed by width (1, B, B(B+1): the checkpoint's and each request's block size), pattern,
how positions and the adapter are given, and the kernel backend. Prompt chunks stay eager (one width per prompt).
`StaticPasses` runs the same static computation without capture on any device, which is how the
tests check it against the eager pass on a CPU; only a CUDA runner captures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from engine.errors import first_line
from engine.model.cache import KVCache
from kernels.dispatch import backend
from kernels.ops import Pattern

MIN_BUCKET = 256  # keys: a shorter window would only add graphs (attention over 256 keys is cheap)
log = logging.getLogger("nemodiff.engine")


def bucket_for(keys: int, room: int) -> int:
    """The smallest power-of-two window (at least MIN_BUCKET) holding `keys` keys, capped at `room`."""
    if keys > room:
        raise ValueError(f"context full: {keys} keys exceed the cache's {room}")
    return min(max(MIN_BUCKET, 1 << (keys - 1).bit_length()), room)


def window_mask(
    pattern: Pattern, length: torch.Tensor, width: int, bucket: int, chunk: torch.Tensor | None = None
) -> torch.Tensor:
    """[T, bucket] bool: which of the window's keys each of the T chunk queries sees, from the
    cache length as a device tensor (no host value, so it can be captured). Keys at or after
    length + T are hidden; `chunk` is Pattern.MASK's [T, T] mask."""
    rel = torch.arange(bucket, device=length.device)[None, :] - length  # key offset from the chunk's start
    if pattern is Pattern.CAUSAL:
        return rel <= torch.arange(width, device=length.device)[:, None]
    if pattern is Pattern.BIDIRECTIONAL:
        return (rel < width).expand(width, bucket)
    inside = (rel >= 0) & (rel < width)
    seen = chunk.index_select(1, rel[0].clamp(0, width - 1))
    return (rel < 0) | (inside & seen)


class WindowCache:
    """What the model sees of the cache in a static pass: `length` is the window's keys before the
    chunk (so the pass attends over the whole window) and `stage` writes at device-computed slots."""

    def __init__(self, cache: KVCache, bucket: int, width: int, slots: torch.Tensor):
        self.cache, self.bucket, self.slots = cache, bucket, slots
        self.k = cache.k  # its shape bounds the positions (`engine.model.rope.Rotary`)
        self.length = bucket - width

    def stage(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.cache.k[layer].index_copy_(2, self.slots, k)
        self.cache.v[layer].index_copy_(2, self.slots, v)
        return self.cache.k[layer, :, :, : self.bucket], self.cache.v[layer, :, :, : self.bucket]


@dataclass(frozen=True)
class PassKey:
    width: int
    pattern: Pattern
    positions: bool  # given (quadratic), else consecutive after the cache
    lora: str  # "off", "on" or "some" (a per-token switch)
    bucket: int
    kernels: str  # the kernel backend it was captured with (`kernels.dispatch.using` may switch it)


class StaticPass:
    """One pass's static inputs and the computation over them (captured into `graph` on CUDA)."""

    def __init__(self, model, cache: KVCache, key: PassKey):
        device, w = cache.k.device, key.width
        self.model, self.cache, self.key = model, cache, key
        self.tokens = torch.zeros(w, dtype=torch.long, device=device)
        self.length = torch.zeros((), dtype=torch.long, device=device)
        self.positions = torch.zeros(w, dtype=torch.long, device=device)
        self.chunk = torch.zeros(w, w, dtype=torch.bool, device=device)
        self.lora = torch.zeros(w, dtype=torch.bool, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: torch.Tensor | None = None

    def load(self, tokens: torch.Tensor, length: int, positions, mask, lora) -> None:
        """Copy a pass's inputs into the static buffers (device copies and a fill: no host sync)."""
        self.tokens.copy_(tokens)
        self.length.fill_(length)
        if self.key.positions:
            self.positions.copy_(positions)
        if self.key.pattern is Pattern.MASK:
            self.chunk.copy_(mask)
        if self.key.lora == "some":
            self.lora.copy_(lora)

    def compute(self) -> torch.Tensor:
        key = self.key
        offsets = torch.arange(key.width, device=self.length.device)
        slots = self.length + offsets
        positions = self.positions if key.positions else slots
        mask = window_mask(key.pattern, self.length, key.width, key.bucket, self.chunk)
        lora = {"off": False, "on": True, "some": self.lora}[key.lora]
        window = WindowCache(self.cache, key.bucket, key.width, slots)
        return self.model(self.tokens[None], positions, window, Pattern.MASK, mask, lora)[0]

    def capture(self, pool) -> None:
        """Warm up (Triton compiles its kernels on a first call), then record the pass."""
        self.compute()
        torch.cuda.synchronize(self.tokens.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            self.out = self.compute()
        self.graph = graph

    def run(self) -> torch.Tensor:
        if self.graph is None:
            return self.compute()
        self.graph.replay()
        return self.out


class StaticPasses:
    """The static passes of one model and cache; `capture` records CUDA graphs (a CUDA runner)."""

    def __init__(self, model, cache: KVCache, capture: bool):
        self.model, self.cache, self.capture = model, cache, capture
        self.widths: set[int] = {1}  # 1 and, per block size in use, B and B(B+1) (`use_block`)
        self.passes: dict[PassKey, StaticPass] = {}
        self.pool = None
        self.failed: str | None = None  # why capture failed: then every pass runs eagerly

    def use_block(self, block: int) -> None:
        self.widths |= {block, block * (block + 1)}

    def key(self, width: int, length: int, pattern: Pattern, positions, lora) -> PassKey | None:
        """The static pass for this call, or None where it runs eagerly (a prompt chunk, a width
        no mode uses, a full cache, or after a failed capture)."""
        if self.failed or width not in self.widths:
            return None
        room = self.cache.k.shape[3]
        if length + width > room:
            return None
        kind = "some" if isinstance(lora, torch.Tensor) else "on" if lora else "off"
        return PassKey(
            width, Pattern(pattern), positions is not None, kind, bucket_for(length + width, room), backend()
        )

    def run(
        self, key: PassKey, tokens: torch.Tensor, length: int, positions, mask, lora
    ) -> torch.Tensor | None:
        """Hidden states [T, H] (a static buffer: valid until the next pass), or None after a
        failed capture (the caller runs the pass eagerly)."""
        p = self.passes.get(key)
        if p is None:
            p = StaticPass(self.model, self.cache, key)
            p.load(tokens, length, positions, mask, lora)
            if self.capture:
                try:
                    p.capture(self.pool)
                except Exception as e:  # noqa: BLE001 - any capture failure means eager, never a crash
                    reason = f"{type(e).__name__}: {first_line(e)}"
                    self.failed = f"CUDA graphs off, passes run eagerly: capture failed ({reason})"
                    log.warning(self.failed)
                    return None
                self.pool = p.graph.pool()
            self.passes[key] = p
        p.load(tokens, length, positions, mask, lora)
        return p.run()
