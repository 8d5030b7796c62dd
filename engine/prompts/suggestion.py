"""One suggestion at a cursor: request -> events -> the cut suggestion. Every caller that completes
at a cursor runs it (the app, watch mode, `complete`, `eval-fim`, the server's /infill and
/v1/completions with a suffix), so a cursor situation ends the same way everywhere.

The rules follow what users of llama.vim, Tabby, Continue and Copilot expect: a suggestion stops
where the code dedents below the cursor's block, stays on one line when text sits right of the
cursor, ends before the bracket or quote already right of the cursor, ends a loop after its first
round, and is capped in lines; one that only repeats the rest of the line, the next line or the
suffix, or begins with the line above again, is dropped, and whitespace is never offered.
llama.cpp's own `n_indent` and `t_max_predict_ms` apply too. Once a rule fires the suggestion is
final and the pipeline cancels the generation before its next forward pass.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.events import Commit, Done, Event, Step
from engine.prompts import stop_rules
from engine.prompts.stop_rules import indentation
from engine.request import ContextChunk, GenerationConfig, Request

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # never inserted into a user's file (tab and newline stay)


@dataclass(frozen=True)
class Context:
    """The text around the cursor that a request is made of, and what the rules need to know."""

    prefix: str
    suffix: str
    line_before: str  # the cursor's line up to the cursor
    rest_of_line: str  # the cursor's line after the cursor
    next_line: str  # the next non-empty line below the cursor ("" at the end)

    @property
    def key(self) -> tuple[str, str]:
        return self.prefix, self.suffix

    @classmethod
    def around(cls, prefix: str, suffix: str) -> "Context":
        """The context of a cursor between `prefix` and `suffix` (all a server or a script knows)."""
        rest_of_line, _, below = suffix.partition("\n")
        following = next((line for line in below.split("\n") if line.strip()), "")
        return cls(prefix, suffix, prefix.rpartition("\n")[2], rest_of_line, following)


@dataclass(frozen=True)
class Rules:
    """Which rules end a suggestion. `editor` off leaves llama.cpp's own (`n_indent`, the time cap)
    and `max_lines`: the raw completion a client that filters for itself asks for."""

    max_lines: int | None = None  # None: no cap (the length is the request's token budget)
    editor: bool = True
    n_indent: int = 0  # end before a later line indented less (llama.cpp's n_indent)
    max_predict_s: float | None = None  # once a newline came, end this long after the prefill

    def lines(self, ctx: Context) -> int | None:
        """The most lines a suggestion at `ctx` may have: one when text sits right of the cursor."""
        return 1 if self.editor and ctx.rest_of_line.strip() else self.max_lines


def printable(text: str) -> str:
    """`text` without control characters (tab and newline stay): never shown, never inserted."""
    return _CONTROL.sub("", text)


def cut(text: str, ctx: Context, rules: Rules, seen: int = 0) -> tuple[str, bool]:
    """The part of streamed text `text` to keep, and whether a rule fired (then the text is final);
    `seen`: how much of it was kept before without a loop (its ends need no new loop check).

    Stops: a line that dedents below the block the cursor is in (or below `n_indent`); more lines
    than `rules.lines`; the bracket or quote that already follows the cursor (kept out: it is
    there); a loop (`5, 5, 5, ...`: one round of it is kept). When the cursor sits in a line's
    leading whitespace the suggestion's first line sets the block's indentation, so a new block
    body (after `def f():`) ends where the code dedents again.
    """
    if not rules.editor:
        return stop_rules.cut(text, min_indent=rules.n_indent or None, max_lines=rules.max_lines)
    text = printable(text)
    first = text.split("\n", 1)[0]
    if ctx.line_before.strip() or not first.strip():
        block = indentation(ctx.line_before)
    else:
        block = indentation(ctx.line_before + first)
    text, fired = stop_rules.cut(text, min_indent=max(block, rules.n_indent), max_lines=rules.lines(ctx))
    rest = ctx.rest_of_line.strip()
    closing = stop_rules.closing_at(text, rest[0]) if rest else None
    if closing is not None:
        text, fired = text[:closing], True
    repeats_at = stop_rules.first_loop(text, seen)
    if repeats_at is not None:
        text, fired = text[:repeats_at], True
    return text, fired


def offer(text: str, ctx: Context, rules: Rules) -> str:
    """The suggestion to offer from kept text: trailing whitespace trimmed, and "" when it is
    whitespace or only repeats what is already there (editor rules only)."""
    if not rules.editor:
        return text
    text = text.rstrip()
    return "" if not text.strip() or repeats(text, ctx) else text


def repeats(text: str, ctx: Context) -> bool:
    """Does the suggestion only say again the rest of the line, the next non-empty line or the
    suffix, or does it begin by writing again the line above it (Continue drops those too)?"""
    stripped = text.strip()
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    first_line = (ctx.line_before + lines[0]) if first == 0 else lines[first]
    before = ctx.prefix.split("\n")[:-1] + (
        [] if first == 0 else [ctx.line_before + lines[0], *lines[1:first]]
    )
    above = next((line for line in reversed(before) if line.strip()), "")
    rest, head = ctx.rest_of_line.strip(), lines[0].strip()
    return bool(
        (rest and head and rest.startswith(head))
        or (ctx.next_line.strip() and first_line.strip() == ctx.next_line.strip())
        or (above.strip() and first_line.strip() == above.strip())
        or ctx.suffix.strip().startswith(stripped)
    )


class Cancellable(Protocol):
    """A generation as the pipeline drives it: `engine.Generation`, a remote one, a test's fake."""

    def __iter__(self) -> Iterator[Event]: ...

    def cancel(self) -> None: ...


class Pipeline:
    """One suggestion in the making: it shapes the request, follows the generation's events, keeps
    what the rules allow (`text`) and, once a rule fires (`final`), cancels the generation."""

    def __init__(self, ctx: Context, rules: Rules = Rules(), clock: Callable[[], float] = time.monotonic):
        self.ctx = ctx
        self.rules = rules
        self.clock = clock
        self.raw = ""  # every committed character
        self.text = ""  # what the rules keep of it
        self.final = False  # a rule fired: `text` no longer changes
        self.done: Done | None = None
        self._t0 = clock()

    def request(self, config: GenerationConfig, context: Sequence[ContextChunk] = ()) -> Request:
        """The fill-in-the-middle request (with `context` chunks from other files): a one-line
        suggestion also stops the engine at "\\n", so diffusion does not denoise the slots after it."""
        if self.rules.lines(self.ctx) == 1 and "\n" not in config.stop:
            config = config.replace(stop=[*config.stop, "\n"])
        return Request(prefix=self.ctx.prefix, suffix=self.ctx.suffix, config=config, context=list(context))

    def add(self, event: Event) -> bool:
        """Take one event; whether the suggestion is final."""
        if isinstance(event, Done):
            self.done = event
        if self.final or isinstance(event, Done):
            return self.final
        if isinstance(event, Step) and event.kind == "prefill":
            self._t0 = self.clock()  # the prediction time starts once the prompt is processed
        elif isinstance(event, Commit) and event.text:
            self.raw += event.text
            self.text, self.final = cut(self.raw, self.ctx, self.rules, seen=len(self.text))
        cap = self.rules.max_predict_s
        if not self.final and cap is not None and "\n" in self.text and self.clock() - self._t0 > cap:
            self.final = True
        return self.final

    def follow(self, generation: Cancellable) -> Iterator[Event]:
        """The generation's events, each taken first: the one that makes the suggestion final
        cancels the generation before it is passed on, so no forward pass runs after it."""
        for event in generation:
            was_final = self.final
            if self.add(event) and not was_final:
                generation.cancel()
            yield event

    @property
    def suggestion(self) -> str:
        """What to offer (final once the generation is done)."""
        return offer(self.text, self.ctx, self.rules)
