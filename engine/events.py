"""The typed events a generation yields: the contract the app, the server and `--stream` share.

A generation yields, in order: optional `Note`s, one `Step` per forward pass, `Commit`s whenever
tokens become final (append-only: provisional text never enters `Commit.text`), and one `Done`.
A `Note` can also come midway (`auto` switching to AR); `Done.notes` repeats every note.
Every event is a plain dataclass; `to_json()` gives the JSON-lines form of `--stream`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Union

PassKind = Literal["prefill", "ar", "denoise", "draft", "verify", "quadratic"]
MASKED = -1  # token id shown for a still-masked slot
OWNER = (
    "nemodiff"  # `owned_by` in a nemodiff server's /v1/models: tells a remote client it can read these events
)


@dataclass
class Note:
    """Something the user should see: a mode fallback, a switch to AR, a truncated prompt."""

    message: str
    type: str = "note"


@dataclass
class Step:
    """One forward pass. `tokens`, `committed`, `confidence` and `commit_step` describe every
    slot of the current block (for AR and prefill: the tokens this pass produced)."""

    kind: PassKind
    block: int
    step: int
    nfe: int
    tokens: list[int]
    committed: list[bool]
    confidence: list[float]
    commit_step: list[int]  # step at which each slot was committed, -1 while provisional
    drafted: list[int] | None = None  # self-spec: the drafted tokens
    accepted: int | None = None  # self-spec: how many were accepted this cycle (bonus included)
    copied: int | None = (
        None  # self-spec: drafted[:copied] were copied from the context (engine/copy_draft.py)
    )
    elapsed: float = 0.0  # seconds since the generation started
    type: str = "step"


@dataclass
class Commit:
    """Tokens that just became final, with their text delta (UTF-8-safe)."""

    token_ids: list[int]
    text: str
    n_tokens: int  # total committed so far
    type: str = "commit"


@dataclass
class Done:
    text: str
    token_ids: list[int]
    n_tokens: int
    nfe: int  # forward passes after the prompt's (the reference also counts the prefill: `prefill_passes`)
    tokens_per_forward: float
    seconds: float
    tokens_per_second: float
    mode: str  # the mode that ran ("ar" once `auto` has switched to it midway)
    stop_reason: Literal["eos", "stop", "length", "cancelled"]
    accepted_histogram: dict[int, int] = field(default_factory=dict)  # self-spec: accepted length -> cycles
    copy_drafted: int = 0  # self-spec: drafted tokens that were copies of the context
    copy_accepted: int = 0  # ... and how many of them were accepted
    notes: list[str] = field(default_factory=list)
    prompt_token_ids: list[int] = field(default_factory=list)
    tokens_cached: int = 0  # prompt tokens reused from the previous request's cache
    truncated: bool = (
        False  # the prompt was trimmed to fit the context window (context chunks left out included)
    )
    context_chunks: int = 0  # the request's context chunks in the prompt (the newest ones)
    context_tokens: int = 0  # and their tokens
    prefill_passes: int = 0  # causal passes that appended the (uncached part of the) prompt
    type: str = "done"


Event = Union[Note, Step, Commit, Done]


def to_json(event: Event) -> dict[str, Any]:
    return dataclasses.asdict(event)
