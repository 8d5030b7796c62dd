"""One generation's output side: committed tokens, stop rules, text deltas and counters.

Decoding modes call `commit(ids)` with tokens that became final; it applies EOS, stop strings
and the token budget, and returns the `Commit` event with the new text. Text that could be the
start of a stop string is held back until it is certain, so emitted text is never retracted.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from engine.events import Commit, Done
from engine.prompts.healing import HealConstraint
from engine.prompts.tokenizer import StreamDecoder, Tokenizer


class Sequence:
    def __init__(
        self,
        tok: Tokenizer,
        prompt_ids: list[int],
        max_new_tokens: int,
        stop_ids: set[int],
        stop: list[str],
        heal: HealConstraint | None = None,
    ):
        self.tok = tok
        self.max_new_tokens = max_new_tokens
        self.stop_ids = stop_ids
        self.stop = [s for s in stop if s]
        self.heal = heal
        self.skip = len(heal.remaining) if heal else 0  # healed characters the caller already has
        self.out: list[int] = []
        self.decoder = StreamDecoder(tok, prompt_ids)
        self.text = ""  # visible text emitted so far
        self.pending = ""  # decoded text held back (possible start of a stop string)
        self.stop_reason: str | None = None
        self.nfe = 0
        self.accepted = Counter()
        self.copy_drafted = 0  # self-spec: copied drafts, and how many the verifier accepted
        self.copy_accepted = 0
        self.switched_to: str | None = None  # the mode a generation changed to midway (auto: "ar")
        self.notes: list[str] = []  # notes raised midway, reported again in Done
        self.t0 = time.perf_counter()

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None

    @property
    def remaining(self) -> int:
        return self.max_new_tokens - len(self.out)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def ends_output(self, token_id: int) -> bool:
        """Would this token end the output: EOS, or text containing a stop string? (Diffusion
        freezes the slots after such a token instead of denoising text that would be cut.)"""
        if token_id in self.stop_ids:
            return True
        texts = self.tok.token_texts if self.stop else ()
        return token_id < len(texts) and any(s in texts[token_id] for s in self.stop)

    def done(self, mode: str, notes: list[str], **prompt: Any) -> Done:
        """The final event: what was written, how fast, and why it stopped ("cancelled" if it had
        not); `prompt` holds Done's fields about the prompt (prompt_token_ids, tokens_cached, ...)."""
        if not self.finished:
            self.stop_reason = "cancelled"
        seconds = self.elapsed()
        n = len(self.out)
        return Done(
            text=self.text,
            token_ids=list(self.out),
            n_tokens=n,
            nfe=self.nfe,
            tokens_per_forward=n / max(self.nfe, 1),
            seconds=seconds,
            tokens_per_second=n / seconds if seconds > 0 else 0.0,
            mode=self.switched_to or mode,
            stop_reason=self.stop_reason,
            accepted_histogram=dict(sorted(self.accepted.items())),
            copy_drafted=self.copy_drafted,
            copy_accepted=self.copy_accepted,
            notes=notes + self.notes,
            **prompt,
        )

    def commit(self, ids: list[int]) -> Commit | None:
        new: list[int] = []
        delta = ""
        for i in ids:
            if self.finished:
                break
            if i in self.stop_ids:
                self.stop_reason = "eos"
                break
            new.append(i)
            if len(self.out) + len(new) >= self.max_new_tokens:
                self.stop_reason = "length"
            if self.stop:  # token by token: tokens after the one that completes a stop string are not output
                delta += self._visible(self.decoder.push([i]))
        self.out.extend(new)
        if not self.stop:
            delta = self._visible(self.decoder.push(new))
        if self.finished and self.stop_reason != "stop":
            delta += self._visible(self.decoder.flush())
        if not new and not delta:
            return None
        return Commit(token_ids=new, text=delta, n_tokens=len(self.out))

    def _visible(self, raw: str) -> str:
        """Drop healed characters, cut at a stop string, hold back a possible stop-string start."""
        if self.skip:
            cut = min(self.skip, len(raw))
            raw, self.skip = raw[cut:], self.skip - cut
        if not self.stop:  # nothing to cut or hold back
            self.text += raw
            return raw
        text = self.pending + raw
        for s in self.stop:
            at = text.find(s)
            if at >= 0:
                text, self.stop_reason = text[:at], "stop"
        hold = 0
        if not self.finished:
            hold = max((k for s in self.stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        self.pending = text[len(text) - hold :] if hold else ""
        emitted = text[: len(text) - hold]
        self.text += emitted
        return emitted
