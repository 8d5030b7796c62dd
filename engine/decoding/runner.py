"""Runs a model over one sequence and owns its cache: the only place forward passes happen.

`NativeRunner` drives the NLD model with every attention pattern; `HFRunner` drives any
`transformers` causal LM (the AR fallback) through the same `extend`/`crop` interface.
Both keep the cached token ids so a new request reuses the longest common prompt prefix.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod

import torch

from engine.decoding.graphs import StaticPasses
from engine.model.decode_step import MAX_WIDTH, DecodeStep
from engine.model.masks import MaskBook
from engine.model.network import NLDModel
from kernels.dispatch import use_triton
from kernels.ops import Pattern

PREFILL_CHUNK = 1024  # tokens per causal pass when a prompt is appended: the torch attention builds a
# [T, cache + T] mask, which for a 262k-token prompt in one pass is 68 GB


class PrefixCache(ABC):
    """What both runners share: the ids whose K/V the cache holds, so a request reuses its prefix."""

    ids: list[int]

    @abstractmethod
    def crop(self, n: int) -> None:
        """Drop every cached token from position `n` on."""

    def reuse(self, prompt: list[int]) -> int:
        """Keep the longest cached prefix of `prompt` but never its last token (its logits pick the
        first new token), drop the rest of the cache, and return how many tokens were kept."""
        common = 0
        for a, b in zip(self.ids, prompt[:-1]):
            if a != b:
                break
            common += 1
        self.crop(common)
        return common


class NativeRunner(PrefixCache):
    native = True

    def __init__(self, model: NLDModel, capacity: int = 4096):
        self.model = model
        self.device = model.encoder.embed_tokens.weight.device
        self.ids: list[int] = []  # token ids whose K/V the cache holds
        # CUDA graphs for the passes decoding repeats (engine/decoding/graphs.py); never on a CPU.
        self.graphs = self.device.type == "cuda" and os.environ.get("NEMODIFF_CUDA_GRAPHS", "1") != "0"
        self.static: StaticPasses | None = None
        # A CPU's causal and bidirectional passes of up to MAX_WIDTH tokens (drafts with the merged
        # adapter too) run as one TorchScript call each (engine/model/decode_step.py).
        self.step = DecodeStep.build(model)
        self._allocate(model.new_cache(capacity))
        self.use_block(model.config.block_size)

    def _allocate(self, cache) -> None:
        """The cache and what is sized by it: the torch path's masks, the host buffer a pass's token
        ids are written into (pinned on a GPU, so the copy to it needs no staging) and the graphs."""
        self.cache = cache
        room = cache.k.shape[3]
        self.masks = MaskBook(room, self.device)
        host = torch.zeros(room, dtype=torch.long, pin_memory=self.device.type == "cuda")
        self._host, self._host_np, self._row = host, host.numpy(), host[None]
        self._tokens = (
            host if self.device.type == "cpu" else torch.zeros(room, dtype=torch.long, device=self.device)
        )
        if self.graphs:  # graphs record the cache's addresses: a new cache needs new ones
            widths, failed = (self.static.widths, self.static.failed) if self.static else ({1}, None)
            self.static = StaticPasses(self.model, cache, capture=True)
            self.static.widths, self.static.failed = set(widths), failed

    @property
    def graph_note(self) -> str | None:
        """Why CUDA graphs are off after a failed capture (None while they work or on a CPU)."""
        return self.static.failed if self.static else None

    def use_block(self, block: int) -> None:
        """Passes of B and B(B+1) tokens will run (a request's block size): graph them on a GPU."""
        if self.static is not None:
            self.static.use_block(block)

    @property
    def length(self) -> int:
        return self.cache.length

    def reserve(self, n: int, widest: int, block: int | None = None) -> None:
        """Make room for `n` tokens and a pass of `widest` staged ones, reallocating only when a
        request outgrows the cache (a larger block than the checkpoint's can need more scratch);
        `block` is the request's block size (its passes get graphs on a GPU)."""
        cache = self.cache
        if n > cache.capacity or widest > cache.scratch:
            capacity = max(n, 2 * cache.capacity) if n > cache.capacity else cache.capacity
            self._allocate(self.model.new_cache(capacity, max(widest, cache.scratch)))
            self.ids = []
        if block is not None:
            self.use_block(block)

    def crop(self, n: int) -> None:
        self.cache.crop(n)
        del self.ids[n:]

    @torch.inference_mode()
    def forward(
        self,
        tokens: list[int],
        pattern: Pattern,
        positions: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        lora: bool | torch.Tensor = False,
    ) -> torch.Tensor:
        """Hidden states [T, H] of a pass that reads the cache and stages (not commits) the chunk
        (at the positions after the cache unless given). On a GPU, a graphed pass returns a static
        buffer: valid until the next pass."""
        return self._pass(tokens, pattern, positions, mask, lora)

    def _pass(
        self, tokens: list[int], pattern: Pattern, positions=None, mask=None, lora=False
    ) -> torch.Tensor:
        """`forward` without its own inference mode (entering one costs a few us: `extend` enters
        one for all its chunks)."""
        n = len(tokens)
        if self._scripted(n, pattern, positions, lora):
            if n == 1 and pattern is Pattern.CAUSAL and lora is False:  # an AR step: no tensor to build
                return self.step(tokens[0], self.cache)
            if n > 1:
                causal_or_none = self.masks.full(pattern, n, self.length)
                return self.step.chunk(self.token_ids(tokens)[0], self.cache, causal_or_none, lora is True)
        t = self.token_ids(tokens)
        if self.static is not None:
            key = self.static.key(n, self.length, pattern, positions, lora)
            out = self.static.run(key, t[0], self.length, positions, mask, lora) if key else None
            if out is not None:
                return out
        # (one causal token sees every key: no mask to build, whichever kernels run)
        if (n > 1 or pattern is not Pattern.CAUSAL) and not use_triton(self._tokens):
            mask = self.masks.full(pattern, n, self.length, mask)  # built once per shape
            pattern = Pattern.MASK if mask is not None else Pattern.BIDIRECTIONAL
        positions = self.length if positions is None else positions
        return self.model.forward(t, positions, self.cache, pattern, mask, lora)[0]  # (inference: no hooks)

    def _scripted(self, n: int, pattern: Pattern, positions, lora) -> bool:
        """Whether a pass of `n` tokens runs as the scripted CPU pass (engine/model/decode_step.py):
        causal or bidirectional, at the positions after the cache, without a per-token adapter."""
        return (
            self.step is not None
            and n <= MAX_WIDTH
            and pattern is not Pattern.MASK
            and positions is None
            and (lora is False or (lora is True and self.step.drafts))
            and self.step.fits(self.cache, n)
            and not use_triton(self._tokens)
        )

    def token_ids(self, tokens: list[int]) -> torch.Tensor:
        """`tokens` as a [1, T] device tensor: written into a preallocated buffer, not a new tensor per pass."""
        n = len(tokens)
        if n > len(self._host):
            return torch.tensor([tokens], device=self.device)  # wider than any pass the cache has room for
        self._host_np[:n] = tokens
        if self._tokens is self._host:
            return self._row.narrow(1, 0, n)
        return self._tokens[:n].copy_(self._host[:n])[None]

    def keep(self, tokens: list[int], offsets: list[int] | None = None) -> None:
        """Commit the staged chunk's K/V: all of it, or only the chunk positions `offsets`."""
        keep = None if offsets is None else torch.tensor(offsets, device=self.device)
        self.cache.commit(len(tokens), keep)
        self.ids.extend(tokens)

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.logits(hidden)

    @staticmethod
    def passes(n: int) -> int:
        """Forward passes `extend` makes for n tokens."""
        return -(-n // PREFILL_CHUNK)

    @torch.inference_mode()
    def extend(self, tokens: list[int]) -> torch.Tensor:
        """Causal passes (chunks of PREFILL_CHUNK) that append `tokens` to the cache; fp32 logits [V]
        after the last one."""
        for start in range(0, len(tokens), PREFILL_CHUNK):
            chunk = tokens[start : start + PREFILL_CHUNK]
            h = self._pass(chunk, Pattern.CAUSAL)
            self.keep(chunk)
        return self.logits(h if len(h) == 1 else h[-1:])[0]


class HFRunner(PrefixCache):
    """The AR fallback: a `transformers` causal LM with its own dynamic cache."""

    native = False

    def __init__(self, model, mask_id: int | None = None):
        from transformers import DynamicCache

        self.model = model
        self.device = model.device
        self.mask_id = mask_id
        self._new_cache = lambda: DynamicCache(config=model.config)
        self.cache = self._new_cache()
        # transformers renamed `past_key_values` to `cache` (5.x); speak whichever this version knows.
        self._cache_kw = (
            "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        )
        self.ids: list[int] = []

    @property
    def length(self) -> int:
        return len(self.ids)

    def reserve(self, n: int, widest: int, block: int | None = None) -> None:
        """Dynamic caches grow on their own."""

    @staticmethod
    def passes(n: int) -> int:
        """Forward passes `extend` makes for n tokens: one."""
        return 1

    def crop(self, n: int) -> None:
        if n == 0:
            self.cache = self._new_cache()
        elif n < len(self.ids):
            self.cache.crop(n - len(self.ids))  # a negative count drops that many tokens
        del self.ids[n:]

    @torch.inference_mode()
    def extend(self, tokens: list[int]) -> torch.Tensor:
        t = torch.tensor([tokens], device=self.device)
        out = self.model(input_ids=t, use_cache=True, logits_to_keep=1, **{self._cache_kw: self.cache})
        self.ids.extend(tokens)
        logits = out.logits[0, -1].float()
        if self.mask_id is not None:
            logits[self.mask_id] = float("-inf")
        return logits
