"""Where a saved file is filled: markers (alone in a comment or not) and the diff rule."""

from __future__ import annotations

import pytest

from nemodiff_tui.watch import WatchError
from nemodiff_tui.watch.holes import Hole, check_marker, diff_hole, find_markers


def fill(text: str, hole: Hole, with_: str) -> str:
    return text[: hole.start] + with_ + text[hole.end :]


def test_an_inline_marker_is_replaced_alone():
    text = "x = <fill>\ny = 2\n"
    [hole] = find_markers(text)
    assert hole == Hole(4, 10, 1, 5, "marker")
    assert fill(text, hole, "f(1)") == "x = f(1)\ny = 2\n"


@pytest.mark.parametrize(
    "line",
    [
        "    # <fill>",
        "    ## <fill>  ",
        "    // <fill>",
        "    /* <fill> */",
        "    <!-- <fill> -->",
        "    -- <fill>",
        "    ;; <fill>",
        "    %<fill>",
    ],
)
def test_a_marker_alone_in_a_comment_takes_the_comment_along(line):
    text = f"def f():\n{line}\n    pass\n"
    [hole] = find_markers(text)
    assert (hole.line, hole.column) == (2, 5)
    assert fill(text, hole, "return 1") == "def f():\n    return 1\n    pass\n"


def test_a_marker_in_a_comment_with_other_text_is_replaced_alone():
    text = "x = 1  # TODO <fill> later\n"
    [hole] = find_markers(text)
    assert fill(text, hole, "now") == "x = 1  # TODO now later\n"


def test_crlf_lines_keep_their_line_ending():
    text = "a\r\n  # <fill>\r\nb\r\n"
    [hole] = find_markers(text)
    assert fill(text, hole, "x") == "a\r\n  x\r\nb\r\n"


def test_every_marker_is_a_hole_in_order_with_its_line_and_column():
    text = "a = <fill>\nb = 1\n\tc = <fill>; d = <fill>\n"
    assert [(h.line, h.column) for h in find_markers(text)] == [(1, 5), (3, 6), (3, 18)]


def test_the_marker_is_configurable():
    assert [(h.line, h.column) for h in find_markers("x = @@\n# @@\n", "@@")] == [(1, 5), (2, 1)]
    assert find_markers("x = <fill>\n", "@@") == []


@pytest.mark.parametrize("marker", ["", "a\nb"])
def test_a_marker_must_be_one_line_of_text(marker):
    with pytest.raises(WatchError):
        check_marker(marker)


@pytest.mark.parametrize(
    "previous, current, at",
    [
        ("a\nb\nc\n", "a\nb\nnew line\nc\n", (3, 9)),  # inserted line: its end
        ("a\nb\nc\n", "a\nB = 1\nc\n", (2, 6)),  # changed line
        ("a\nb\n", "a\nb\nc\nd", (4, 2)),  # appended at the end, no final newline
        ("a\nb\nc\nd\n", "a\nX\nc\nY\n", (4, 2)),  # two changes: the end of the last one
        ("a\r\nb\r\n", "a\r\nbb\r\n", (2, 3)),  # CRLF: before the \r
    ],
)
def test_the_diff_hole_is_at_the_end_of_the_last_changed_line(previous, current, at):
    hole = diff_hole(previous, current)
    assert hole is not None and hole.rule == "diff" and hole.start == hole.end
    assert (hole.line, hole.column) == at


@pytest.mark.parametrize("previous, current", [("a\nb\nc\n", "a\nc\n"), ("a\nb\n", "a\nb\n"), ("a\n", "")])
def test_deletions_only_or_no_change_give_no_diff_hole(previous, current):
    assert diff_hole(previous, current) is None
