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
        # A CUDA graph attends over a whole bucket of slots, masked: an unwritten slot must hold a
        # number (a masked NaN still poisons the product). Eager passes read only written slots, so
        # on a CPU the memory stays untouched, and out of the resident set, until a token needs it
        # (zeroing NLD-3B's 4096-token fp32 cache took 1.7-2.5 s of every load and 0.9 GB of RSS).
        alloc = torch.zeros if torch.device(device).type == "cuda" else torch.empty
        self.k = alloc(shape, device=device, dtype=dtype)
        self.v = alloc(shape, device=device, dtype=dtype)
        self._window: tuple[int, int] | None = None  # (length, chunk) the views in `_views` are for
        self._views: list = []
        self.capacity = capacity
        self.scratch = scratch  # room after `capacity` for the staged chunk of the widest pass
        self.length = 0

    def stage(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write a chunk's K/V [1, Hkv, T, D] after the cache; return the [cache + chunk] views.
        A pass's views of every layer are taken once, by its first layer (`narrow` and `unbind`:
        two ops for all layers where per-layer indexing costs several per layer)."""
        t = k.shape[2]
        if self._window != (self.length, t):
            end = self.length + t
            if end > self.k.shape[3]:
                raise ValueError(f"context full: {end} tokens exceed the cache's {self.capacity} + scratch")
            self._views = [
                (c.narrow(3, self.length, t).unbind(0), c.narrow(3, 0, end).unbind(0))
                for c in (self.k, self.v)
            ]
            self._window = (self.length, t)
        (k_slots, k_seen), (v_slots, v_seen) = self._views
        k_slots[layer].copy_(k)
        v_slots[layer].copy_(v)
        return k_seen[layer], v_seen[layer]

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
