"""Causal verification of a draft, shared by every mode that drafts: self-speculation's blocks and
the copies block diffusion checks in its closing pass.

A causal pass over `draft` gives the AR choice a[i] after draft[:i+1]; the longest prefix of
draft[1:] that equals those choices is accepted, plus one more AR choice (the bonus). Every token
so accepted is what AR decoding would have written, so verification never changes the text at
temperature 0, and at T > 0 each token is an AR sample.
"""

from __future__ import annotations

import torch

from engine.decoding.modes.state import DecodeState
from engine.events import Step
from kernels import ops


def accept(ctx: DecodeState, draft: list[int], logits: torch.Tensor) -> tuple[list[int], int]:
    """AR choices a[i] after draft[:i+1]; accept a[0..m] where m = matching draft prefix length."""
    a = ctx.sampler.pick(logits, ctx.mask_id)[0]
    n = len(draft)
    m = ops.accept_length(a[: n - 1], torch.tensor(draft[1:], device=a.device)) if n > 1 else 0
    return a[: m + 1].tolist(), m


def verify_step(
    ctx: DecodeState, kind: str, cycle: int, draft: list[int], accepted: list[int], copied: int
) -> Step:
    """The event of a drafting or verifying pass: draft[1:] drafted (the first `copied` of them
    copies), `accepted` the tokens kept so far."""
    n = len(draft)
    ok = len(accepted)
    return Step(
        kind=kind,
        block=cycle,
        step=0,
        nfe=ctx.seq.nfe,
        tokens=draft,
        committed=[i < ok for i in range(n)],
        confidence=[1.0 if i < ok else 0.0 for i in range(n)],
        commit_step=[0 if i < ok else -1 for i in range(n)],
        drafted=draft[1:],
        accepted=ok,
        copied=copied,
        elapsed=ctx.seq.elapsed(),
    )
