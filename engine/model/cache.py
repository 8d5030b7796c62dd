"""The exact KV cache: preallocated per layer, appended by causal passes, read by all passes.

Layout per layer: k, v [1, kv_heads, capacity + scratch, head_dim]. A forward writes its chunk's
K/V into the slots right after `length` and attends over `[0, length + T)`; whether the chunk
becomes part of the cache is decided afterwards (`commit`), so a read-only pass leaves the
logical cache untouched and no buffer is ever reallocated (friendly to CUDA graphs).
"""

from __future__ import annotations

import torch


class KVCache:
    def __init__(
        self,
        n_layers: int,
        kv_heads: int,
        head_dim: int,
        capacity: int,
        scratch: int,
        device: torch.device,
        dtype: torch.dtype,
    ):
        shape = (n_layers, 1, kv_heads, capacity + scratch, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.layers = list(zip(self.k.unbind(0), self.v.unbind(0)))  # per-layer views, taken once
        self.capacity = capacity
        self.scratch = scratch  # room after `capacity` for the staged chunk of the widest pass
        self.length = 0

    def stage(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write a chunk's K/V [1, Hkv, T, D] after the cache; return the [cache + chunk] views.
        (`narrow` on the layer's view: tuple indexing costs several view ops per call.)"""
        t = k.shape[2]
        end = self.length + t
        if end > self.k.shape[3]:
            raise ValueError(f"context full: {end} tokens exceed the cache's {self.capacity} + scratch")
        lk, lv = self.layers[layer]
        lk.narrow(2, self.length, t).copy_(k)
        lv.narrow(2, self.length, t).copy_(v)
        return lk.narrow(2, 0, end), lv.narrow(2, 0, end)

    def commit(self, n: int, keep: torch.Tensor | None = None) -> None:
        """Make `n` staged chunk entries part of the cache: the first n, or the chunk offsets `keep`."""
        start = self.length
        if start + n > self.capacity:
            raise ValueError(f"context full: {start + n} tokens exceed the cache's capacity {self.capacity}")
        if keep is not None:
            idx = keep.to(self.k.device) + start
            self.k[:, :, :, start : start + n] = self.k.index_select(3, idx)
            self.v[:, :, :, start : start + n] = self.v.index_select(3, idx)
        self.length = start + n

    def crop(self, length: int) -> None:
        """Forget everything after `length` tokens (rejected drafts)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot crop a cache of {self.length} tokens to {length}")
        self.length = length

    def reset(self) -> None:
        self.length = 0
