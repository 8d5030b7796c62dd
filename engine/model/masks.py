"""Attention masks of the torch path, built once per pass shape instead of once per pass.

A pass of T tokens after L cached ones attends through a [T, L + T] mask: every cached key is
visible, then the chunk's own pattern. For one T that is a column window of a single band
[T, room + T] (`room` ones, then the chunk mask), so each pass takes a view, whatever L is.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from kernels.ops import Pattern

SHAPES = 8  # bands kept: the widths modes use (1, B, B(B+1)) and a few prompt lengths
MAX_BAND = 1 << 24  # bytes; a wider band (a long prompt chunk over a long cache) is built per pass


class MaskBook:
    def __init__(self, room: int, device: torch.device):
        self.room = room  # the most cached keys a pass can see: the cache's capacity + scratch
        self.device = device
        self._bands: OrderedDict[tuple, tuple[torch.Tensor | None, torch.Tensor]] = OrderedDict()

    def full(
        self, pattern: Pattern, t: int, cache_len: int, mask: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """The [T, cache_len + T] bool mask of a pass (None when every key is visible); `mask` is
        Pattern.MASK's [T, T] chunk mask. The result is shared: callers must not modify it."""
        if pattern is Pattern.BIDIRECTIONAL or (pattern is Pattern.CAUSAL and t == 1):
            return None
        if t * (self.room + t) > MAX_BAND or cache_len > self.room:
            return torch.cat(
                [
                    torch.ones(t, cache_len, dtype=torch.bool, device=self.device),
                    self._chunk(pattern, t, mask),
                ],
                1,
            )
        key = (pattern, t, None if mask is None else id(mask))
        entry = self._bands.get(key)
        if entry is None or entry[0] is not mask:  # a new shape, or another mask under a reused id
            band = torch.ones(t, self.room + t, dtype=torch.bool, device=self.device)
            band[:, self.room :] = self._chunk(pattern, t, mask)
            entry = self._bands[key] = (mask, band)  # the mask is held so its id stays its own
            if len(self._bands) > SHAPES:
                self._bands.popitem(last=False)
        else:
            self._bands.move_to_end(key)
        return entry[1][:, self.room - cache_len :]

    def _chunk(self, pattern: Pattern, t: int, mask: torch.Tensor | None) -> torch.Tensor:
        if pattern is Pattern.CAUSAL:
            return torch.ones(t, t, dtype=torch.bool, device=self.device).tril()
        if mask is None or mask.shape != (t, t):
            raise ValueError("Pattern.MASK needs a [T, T] mask")
        return mask.to(device=self.device, dtype=torch.bool)
