"""Where a code completion should end, judged on its text: the rules editors apply
(llama.cpp's `n_indent`, a maximum number of lines, Tabby's repetition rule, a closing bracket
that is already right of the cursor). Shared by eval-fim, the server and the app."""

from __future__ import annotations


TAB_WIDTH = 4


def indentation(line: str) -> int:
    """Width of the line's leading whitespace, tabs expanded."""
    lead = line[: len(line) - len(line.lstrip(" \t"))]
    return len(lead.expandtabs(TAB_WIDTH))


def cut(text: str, min_indent: int | None = None, max_lines: int | None = None) -> tuple[str, bool]:
    """Cut `text` before its first later line indented less than `min_indent` (blank lines do
    not count), or after `max_lines` lines. Returns the kept text and whether a rule fired.

    A line only counts once it is complete (followed by a newline) or shows non-blank text,
    so a streaming caller can apply this to partial text and stop the generation early.
    """
    lines = text.split("\n")
    for i, line in enumerate(lines[1:], start=1):
        if max_lines is not None and i >= max_lines:
            return "\n".join(lines[:i]), True
        if min_indent is not None and line.strip() and indentation(line) < min_indent:
            return "\n".join(lines[:i]).rstrip(" \t"), True
    return text, False


MAX_LOOP_UNIT = 200
CLOSERS = {")": "(", "]": "[", "}": "{"}
QUOTES = "\"'`"


def _rounds_needed(unit: str) -> int:
    """How often a unit must occur in a row to be a loop: Tabby's thresholds (3+ characters 6
    times, 10+ characters 4 times), and twice for two lines or more, which a 64-token suggestion
    cannot hold four times."""
    return 2 if unit.count("\n") >= 2 else 4 if len(unit) >= 10 else 6


def loop(text: str) -> int | None:
    """Where to cut `text` if it ends in a loop, keeping its first round; None if it does not.

    A model that has fallen into a loop (`5, 5, 5, ...`, the same lines again and again) repeats
    it until it runs out of tokens. A loop is a unit of at least 3 characters, with two different
    non-blank ones (so indentation, `=====` and `#####` are not loops), repeated at the end of the
    text as often as `_rounds_needed` says; the shortest such unit counts. One round stays (the
    rounds are counted back from the end), without the partial line it ends in if it has lines.
    """
    n = len(text)
    for size in range(3, min(MAX_LOOP_UNIT, n // 2) + 1):
        unit = text[n - size :]
        times = _rounds_needed(unit)
        if (
            size * times > n
            or text[n - size * times :] != unit * times
            or (unit + unit).find(unit, 1) < size
            or len(set("".join(unit.split()))) < 2
        ):
            continue  # not repeated enough, itself a repetition of a shorter unit, or blank-ish
        rounds = times
        while size * (rounds + 1) <= n and text[n - size * (rounds + 1) : n - size * rounds] == unit:
            rounds += 1
        cut = n - size * (rounds - 1)
        return text.rfind("\n", 0, cut) + 1 if "\n" in unit else cut
    return None


def first_loop(text: str, seen: int = 0) -> int | None:
    """`loop` at the first end of `text` past `seen` characters where a loop shows. Every end is
    checked, not only the last, so the cut is the same however the text arrived: a token at a time
    (AR) or a verified block at a time (self-speculation), which can carry a loop several rounds on."""
    for end in range(seen + 1, len(text) + 1):
        at = loop(text[:end])
        if at is not None:
            return at
    return None


def closing_at(text: str, closer: str) -> int | None:
    """Where `text` (inserted at a cursor followed by `closer`) reaches that closer: the first
    `)`/`]`/`}` that closes a bracket opened before the text, or the first quote of the kind;
    None when it does not (or `closer` is neither). A completion that writes the closing
    bracket already right of the cursor would leave it doubled: `f(x))`."""
    if closer in QUOTES:
        at = text.find(closer)
        return at if at >= 0 else None
    if closer not in CLOSERS:
        return None
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in QUOTES:
            quote = ch
        elif ch == CLOSERS[closer]:
            depth += 1
        elif ch == closer:
            if depth == 0:
                return i
            depth -= 1
    return None
