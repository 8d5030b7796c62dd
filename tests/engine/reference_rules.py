"""NVIDIA's decoding rules, loop by loop, over the model's plain forward: no cache, every pass
recomputes the whole sequence, at temperature 0 (the reference the engine's tokens must equal).

Each pass sees the context causally and the block at its end either causally (AR, verify) or
bidirectionally over [context + block] (diffusion, draft): what NLD's cached passes compute.
The pick leaves out the mask id (our one deviation); the confidence is the pick's probability
under the softmax over the full vocabulary, mask included. Slots after a committed stop token
stay masked (SGLang's rule; docs/REFERENCE_RULES.md). Forward passes are counted without the prefill.
"""

from __future__ import annotations

import torch

from engine.decoding.copy_draft import CopyDrafter
from engine.model.network import NLDModel
from kernels.ops import Pattern


class Reference:
    def __init__(self, model: NLDModel, stop_ids: set[int]):
        self.model, self.stop_ids = model, stop_ids
        self.mask_id = model.config.mask_token_id
        self.passes = 0

    @torch.no_grad()
    def logits(
        self, context: list[int], block: list[int], bidirectional: bool, lora: bool = False
    ) -> torch.Tensor:
        """fp32 logits [len(block), V] of the block after `context` (the adapter on the block only)."""
        tokens = context + block
        n, c = len(tokens), len(context)
        mask = torch.ones(n, n, dtype=torch.bool).tril()
        if bidirectional:
            mask[c:, c:] = True
        adapter = torch.arange(n) >= c if lora else False
        hidden = self.model(
            torch.tensor([tokens]), torch.arange(n), pattern=Pattern.MASK, mask=mask, lora=adapter
        )
        return self.model.diffusion_head(hidden[0, c:]).float()

    def pick(self, logits: torch.Tensor) -> tuple[int, float]:
        """argmax without the mask id, and its probability under the full-vocabulary softmax."""
        choice = logits.clone()
        choice[self.mask_id] = float("-inf")
        tok = int(choice.argmax())
        return tok, float(torch.softmax(logits, -1)[tok])

    def first(self, prompt: list[int]) -> int:
        return self.pick(self.logits(prompt[:-1], prompt[-1:], bidirectional=False)[-1])[0]

    def running(self, out: list[int], max_new: int) -> bool:
        return len(out) < max_new and not self.stop_ids.intersection(out)

    def finish(self, out: list[int], max_new: int) -> list[int]:
        for i, tok in enumerate(out):
            if tok in self.stop_ids:
                return out[:i]
        return out[:max_new]

    def ar(self, prompt: list[int], max_new: int) -> list[int]:
        out = [self.first(prompt)]
        while self.running(out, max_new):
            out.append(self.pick(self.logits(prompt + out[:-1], out[-1:], bidirectional=False)[-1])[0])
            self.passes += 1
        return self.finish(out, max_new)

    def diffusion(
        self, prompt: list[int], block: int, threshold: float, max_new: int, copies: bool = False
    ) -> list[int]:
        """FastDiffuser: per step commit the most confident masked slot and every one at or above the
        threshold. The last block is shortened to the tokens left (the engine's deviation). With
        `copies`, the closing causal pass also verifies a copy draft (ours, docs/REFERENCE_RULES.md):
        the AR choices are accepted up to the first that differs from the copy, plus one."""
        context, out = list(prompt), [self.first(prompt)]
        drafter = CopyDrafter(prompt) if copies else None
        while self.running(out, max_new):
            size = min(block, max_new - len(out) + 1)
            blk, end = [out[-1]] + [self.mask_id] * (size - 1), size
            while self.mask_id in blk[:end]:
                logits = self.logits(context, blk, bidirectional=True)
                self.passes += 1
                masked = [i for i in range(end) if blk[i] == self.mask_id]
                picks = {i: self.pick(logits[i]) for i in masked}
                best = max(masked, key=lambda i: picks[i][1])
                for i in masked:
                    if i < end and (i == best or picks[i][1] >= threshold):
                        blk[i] = picks[i][0]
                        if blk[i] in self.stop_ids:
                            end = i + 1
            out += blk[1:end]
            if not self.running(out, max_new):
                break
            context += blk
            copy = drafter.propose(out, min(block - 1, max_new - len(out) - 1)) if drafter else []
            ar = [
                self.pick(row)[0]
                for row in self.logits(context[:-1], context[-1:] + copy, bidirectional=False)
            ]
            self.passes += 1
            m = 0
            while m < len(copy) and ar[m] == copy[m]:
                m += 1
            context += copy[:m]
            out += ar[: m + 1]
        return self.finish(out, max_new)

    def linear_spec(self, prompt: list[int], block: int, max_new: int) -> list[int]:
        """LinearSpec: draft [next, MASK x (B-1)] bidirectionally with the adapter, verify causally,
        accept the AR choices up to the first mismatch plus one."""
        context, out = list(prompt), [self.first(prompt)]
        while self.running(out, max_new):
            logits = self.logits(
                context, [out[-1]] + [self.mask_id] * (block - 1), bidirectional=True, lora=True
            )
            draft = [out[-1]] + [self.pick(row)[0] for row in logits[1:]]
            ar = [self.pick(row)[0] for row in self.logits(context, draft, bidirectional=False)]
            self.passes += 2
            m = 0
            while m < block - 1 and ar[m] == draft[m + 1]:
                m += 1
            context += draft[: m + 1]
            out += ar[: m + 1]
        return self.finish(out, max_new)
