"""What every decoding mode works with, and the two moves they all share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from engine.decoding.copy_draft import CopyDrafter
from engine.decoding.sampling import Sampler
from engine.decoding.sequence import Sequence
from engine.events import Event, Step
from engine.request import GenerationConfig

if TYPE_CHECKING:
    from engine.decoding.modes.auto import AutoPolicy


@dataclass
class DecodeState:
    runner: object  # NativeRunner or HFRunner
    seq: Sequence
    sampler: Sampler
    config: GenerationConfig
    block_size: int
    mask_id: int | None
    cancelled: Callable[[], bool]
    auto: AutoPolicy | None = None  # mode "auto": pools acceptance; AR when drafts never match
    copy: CopyDrafter | None = None  # drafts copied from the prompt and output (self-spec, diffusion)

    @property
    def running(self) -> bool:
        return not self.seq.finished and not self.cancelled()

    def pick_ar(self, logits: torch.Tensor) -> tuple[int, float]:
        """Choose the next AR token from logits [V], honouring an active token-healing constraint."""
        heal = self.seq.heal
        if heal is not None and heal.active:
            logits = logits.masked_fill(~heal.allowed(logits.shape[-1], logits.device), float("-inf"))
        tok, conf = self.sampler.pick_one(logits, self.mask_id)
        if heal is not None and heal.active:
            heal.advance(tok)
        return tok, conf

    def copied(self, k: int) -> list[int]:
        """Up to k tokens copied from the text around the cursor after the output so far ([] if none)."""
        return self.copy.propose(self.seq.out, k) if self.copy is not None and k > 0 else []

    def emit(self, ids: list[int]) -> Iterator[Event]:
        """Commit final tokens to the sequence and yield the resulting Commit event, if any."""
        event = self.seq.commit(ids)
        if event is not None:
            yield event

    def ar_step_event(self, kind: str, tok: int, conf: float, block: int = 0) -> Step:
        return Step(
            kind=kind,
            block=block,
            step=self.seq.nfe,
            nfe=self.seq.nfe,
            tokens=[tok],
            committed=[True],
            confidence=[conf],
            commit_step=[0],
            elapsed=self.seq.elapsed(),
        )
