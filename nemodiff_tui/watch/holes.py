"""Where a saved file asks to be filled: its `<fill>` markers, or else the region changed since the
previous save. Headless (no Textual); the rules are documented in docs/WATCH.md.

Markers: every occurrence of the marker is a hole, and accepting replaces the marker token. When
the marker is alone in a comment on its line (`# <fill>`, `// <fill>`, `/* <fill> */`, ...) the
comment goes too (leader, marker, closer and trailing blanks; the indentation stays), so the code
lands where the comment was instead of inside it.

No marker: the hole is at the end of the last line that was inserted or changed since the previous
version; a save that only deleted lines (or changed nothing) has no hole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from nemodiff_tui.watch import WatchError

MARKER = "<fill>"
LINE_COMMENTS = ("#", "//", "--", ";", "%")  # a leader may repeat: `##`, `;;`, `///`
BLOCK_COMMENTS = (("/*", "*/"), ("<!--", "-->"))

Rule = Literal["marker", "diff"]


@dataclass(frozen=True)
class Hole:
    """A place to fill: the text in [start, end) is replaced by the suggestion."""

    start: int  # character offsets into the file's text
    end: int
    line: int  # 1-based line of `start`
    column: int  # 1-based column of `start`, in characters
    rule: Rule


def check_marker(marker: str) -> None:
    if not marker or "\n" in marker:
        raise WatchError(f"the marker must be non-empty text on one line, got {marker!r}")


def find_markers(text: str, marker: str = MARKER) -> list[Hole]:
    """Every marker in `text`, in order, with the span accepting replaces."""
    holes = []
    alone = _alone_in_comment(marker)
    at = text.find(marker)
    while at >= 0:
        line_start = text.rfind("\n", 0, at) + 1
        line_end = text.find("\n", at)
        line = text[line_start : len(text) if line_end < 0 else line_end]
        match = alone.fullmatch(line)
        if match:
            holes.append(
                _hole(text, line_start + match.start("span"), line_start + match.end("span"), "marker")
            )
        else:
            holes.append(_hole(text, at, at + len(marker), "marker"))
        at = text.find(marker, at + len(marker))
    return holes


def diff_hole(previous: str, current: str) -> Hole | None:
    """The end of the last line inserted or changed between two versions, or None when lines were
    only deleted (or nothing changed).

    Lines common to the start and to the end of both versions are trimmed: what is left of
    `current` is the changed region, found in linear time even in a large file.
    """
    old, new = previous.split("\n"), current.split("\n")
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    last = len(new) - tail - 1  # last changed line of `current`
    if last < head:
        return None
    line_start = sum(len(line) + 1 for line in new[:last])
    end = line_start + len(new[last].removesuffix("\r"))
    return _hole(current, end, end, "diff")


@cache
def _alone_in_comment(marker: str) -> re.Pattern[str]:
    """A line holding nothing but indentation and a comment made of the marker."""
    m = re.escape(marker)
    leaders = "|".join(f"(?:{re.escape(c)})+" for c in LINE_COMMENTS)
    blocks = "|".join(rf"{re.escape(a)}[ \t]*{m}[ \t]*{re.escape(b)}" for a, b in BLOCK_COMMENTS)
    return re.compile(rf"[ \t]*(?P<span>(?:(?:{leaders})[ \t]*{m}|{blocks})[ \t]*)\r?")


def _hole(text: str, start: int, end: int, rule: Rule) -> Hole:
    line_start = text.rfind("\n", 0, start) + 1
    return Hole(start, end, text.count("\n", 0, start) + 1, start - line_start + 1, rule)
