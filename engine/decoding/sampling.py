"""Token choice from logits: greedy at temperature 0, else seeded temperature + top-k + top-p sampling."""

from __future__ import annotations

import torch

from kernels import ops
from kernels.dispatch import use_triton


class Sampler:
    def __init__(
        self, temperature: float, top_p: float, seed: int | None, device: torch.device, top_k: int = 0
    ):
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generator = None
        if temperature > 0:
            self.generator = torch.Generator(device=device)
            if seed is None:
                self.generator.seed()  # fresh entropy; torch.seed() would reseed the caller's global generator
            else:
                self.generator.manual_seed(seed)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Sampling distribution [R, V] after temperature, top-k and top-p."""
        logits = logits.float()
        if 0 < self.top_k < logits.shape[-1]:
            kth = logits.topk(self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > self.top_p  # keep the smallest set reaching top_p
            sorted_p[drop] = 0
            probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
            probs = probs / probs.sum(-1, keepdim=True)
        return probs

    def pick_one(self, logits: torch.Tensor, mask_id: int | None = None) -> tuple[int, float]:
        """`pick` for one row [V], as numbers. Greedy on the torch path takes the plain argmax and
        looks again only when that is the mask token: the token is read anyway, and a step then
        costs five ops where masking a copy first costs eleven."""
        if not self.greedy or use_triton(logits):
            ids, conf = self.pick(logits[None], mask_id)
            return ids.item(), conf.item()
        if logits.dtype != torch.float32:
            logits = logits.float()
        tok = logits.argmax().item()
        if tok == mask_id:
            tok = ops.argmax_confidence(logits[None], mask_id)[0].item()
        return tok, torch.softmax(logits, -1)[tok].item()

    def pick(self, logits: torch.Tensor, mask_id: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids [R] (never `mask_id`) and their probability [R] under the softmax of `logits` [R, V]
        over the full vocabulary, mask included: the diffusion confidence of NVIDIA's rule, in which
        temperature, top-k and top-p shape the choice only."""
        if self.greedy:
            return ops.argmax_confidence(logits, mask_id)
        choice = logits
        if mask_id is not None:
            choice = logits.clone()
            choice[..., mask_id] = float("-inf")
        ids = torch.multinomial(self.probs(choice), 1, generator=self.generator)[:, 0]
        return ids, torch.softmax(logits.float(), dim=-1).gather(-1, ids[:, None])[:, 0]
