"""Where a code completion should end, judged on its text: the rules editors apply
(llama.cpp's `n_indent`, a maximum number of lines). Shared by eval-fim, the server and the app."""

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
