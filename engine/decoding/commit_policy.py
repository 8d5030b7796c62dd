"""Which masked slots a diffusion step commits. Every policy commits at least one slot."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


class CommitPolicy:
    def choose(self, confidence: torch.Tensor, steps_left: int) -> torch.Tensor:
        """Bool [M] over the still-masked slots; always includes the most confident one."""
        chosen = self._choose(confidence, steps_left)
        chosen[confidence.argmax()] = True
        return chosen

    def _choose(self, confidence: torch.Tensor, steps_left: int) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class Threshold(CommitPolicy):
    """NLD's default: the most confident slot plus every slot at or above the threshold."""

    threshold: float = 0.9

    def _choose(self, confidence, steps_left):
        chosen = confidence >= self.threshold
        if steps_left <= 1:  # the step budget is spent: commit everything left
            chosen[:] = True
        return chosen


class EvenSchedule(CommitPolicy):
    """No threshold: spread the masked slots evenly over the remaining steps, most confident first."""

    def _choose(self, confidence, steps_left):
        k = math.ceil(confidence.numel() / max(steps_left, 1))
        chosen = torch.zeros_like(confidence, dtype=torch.bool)
        chosen[confidence.topk(k).indices] = True
        return chosen


def policy_for(schedule: str, threshold: float) -> CommitPolicy:
    return EvenSchedule() if schedule == "even" else Threshold(threshold)
