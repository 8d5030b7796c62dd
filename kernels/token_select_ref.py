"""Torch reference for the diffusion commit step and the self-speculation accept length."""

from __future__ import annotations

import torch


def argmax_confidence_ref(logits: torch.Tensor, mask_id: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the argmax with `mask_id` excluded and its probability under the softmax over the full
    vocabulary, mask included (the confidence NVIDIA's rule thresholds; renormalising without the
    mask would inflate it)."""
    if logits.dtype != torch.float32:  # (a no-op `.float()` still costs a dispatch)
        logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    if mask_id is not None:
        logits = logits.clone()
        logits.select(-1, mask_id).fill_(float("-inf"))  # (indexing assignment costs several ops)
    ids = logits.argmax(dim=-1)
    return ids, probs.gather(-1, ids[..., None]).squeeze(-1)


def accept_length_ref(draft: torch.Tensor, target: torch.Tensor) -> int:
    """Number of leading positions where draft equals target (both 1-D, same length)."""
    mismatch = (draft != target).nonzero()
    return int(mismatch[0, 0]) if len(mismatch) else int(draft.numel())
