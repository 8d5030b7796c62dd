"""The record of one generation: the frames the denoising view shows (live and in replay) and the
provisional tail the ghost text shows while the block is still denoising. Headless, no Textual.

Each block's denoising starts with a frame of its masked input (`·` in the view), so a replay shows
a block going from masks to text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from engine.events import MASKED, Commit, Done, Event, Note, Step

PROVISIONAL = ("denoise", "draft")  # steps whose uncommitted slots are worth showing as a guess


@dataclass
class Frame:
    """One forward pass as the view shows it: the step, its slots' texts and the counters then."""

    step: Step
    texts: tuple[str, ...]  # text of every slot's token ("" for a masked slot)
    n_tokens: int  # tokens committed once this pass's commits landed
    accepted: tuple[int, ...]  # self-spec: accepted length of every verify so far
    copies: tuple[int, int] = (0, 0)  # self-spec: copied drafts accepted and verified so far


@dataclass
class Trace:
    """Everything one generation produced, in order; `add` is fed the engine's events."""

    mode: str
    special_ids: frozenset[int] = frozenset()  # EOS and other special tokens: the ghost text ends there
    label: str = "suggestion"  # which request this is: the panel says so ("alternative 2", "prefetch")
    stopped: bool = False  # a stop rule ended it (the engine reports that as a cancel)
    frames: list[Frame] = field(default_factory=list)
    text: str = ""  # committed text (append-only, authoritative)
    n_tokens: int = 0
    accepted: list[int] = field(default_factory=list)
    copies: tuple[int, int] = (0, 0)  # copied drafts accepted, copied drafts verified
    notes: list[str] = field(default_factory=list)
    done: Done | None = None

    def add(self, event: Event, texts: tuple[str, ...] = ()) -> None:
        if isinstance(event, Step):
            if event.kind in ("verify", "quadratic") and event.accepted is not None:
                self.accepted.append(event.accepted)
                copied = event.copied or 0
                self.copies = (self.copies[0] + min(event.accepted - 1, copied), self.copies[1] + copied)
            if event.kind == "denoise" and (
                not self.frames
                or self.frames[-1].step.block != event.block
                or self.frames[-1].step.kind != "denoise"
            ):
                masked = masked_input(event)
                shown = tuple(text if ok else "" for text, ok in zip(texts, masked.committed))
                self.frames.append(Frame(masked, shown, self.n_tokens, tuple(self.accepted), self.copies))
            self.frames.append(Frame(event, texts, self.n_tokens, tuple(self.accepted), self.copies))
        elif isinstance(event, Commit):
            self.text += event.text
            self.n_tokens = event.n_tokens
            if self.frames:
                self.frames[-1].n_tokens = event.n_tokens
        elif isinstance(event, Note):
            self.notes.append(event.message)
        elif isinstance(event, Done):
            self.done = event
            self.mode = event.mode

    @property
    def milliseconds(self) -> float:
        """How long it ran, by the engine's clock: to its end, or to its latest pass."""
        if self.done is not None:
            return self.done.seconds * 1000
        return self.frames[-1].step.elapsed * 1000 if self.frames else 0.0

    def tail(self) -> list[tuple[str, bool]]:
        """The not-yet-committed rest of the current block as (text, masked) pieces: the best guess
        of each slot after the committed run, or an empty-text placeholder for a masked one, up to
        a guessed special token (the text would end there)."""
        if self.done is not None or not self.frames or self.frames[-1].step.kind not in PROVISIONAL:
            return []
        frame = self.frames[-1]
        step = frame.step
        start = next((i for i, ok in enumerate(step.committed) if not ok), len(step.committed))
        end = next(
            (i for i in range(start, len(step.tokens)) if step.tokens[i] in self.special_ids),
            len(step.tokens),
        )
        return [
            ("", True) if step.tokens[i] == MASKED else (frame.texts[i], False) for i in range(start, end)
        ]


def masked_input(step: Step) -> Step:
    """The block as the model received it in `step`'s first denoising pass: the slots committed
    before it, the rest masked. The engine reports each pass's guesses, so without this frame a
    replay would never show a masked slot, however slowly it plays."""
    before = [0 <= at < step.step for at in step.commit_step]
    return dataclasses.replace(
        step,
        step=step.step - 1,
        nfe=max(step.nfe - 1, 0),
        committed=before,
        tokens=[t if ok else MASKED for t, ok in zip(step.tokens, before)],
    )
