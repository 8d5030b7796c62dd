"""The watch app's detail pane: the diff accepting a suggestion would make."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from nemodiff_tui.watch.holes import find_markers
from nemodiff_tui.watch.suggestions import Suggestion
from nemodiff_tui.widgets.watch_list import diff_lines

BODY = "".join(f"line_{i} = {i}\n" for i in range(40))


@pytest.mark.parametrize(
    "source, text",
    [
        (BODY + "x = <fill>\n" + BODY, "compute(\n    1, 2)"),
        ("x = <fill>\n" + BODY, "1"),
        (BODY + "x = <fill>", "a\nb\nc"),
        (BODY + "def f():\n    # <fill>\n    pass\n" + BODY, "y = 1\n    return y"),
        ((BODY + "x = <fill>\n" + BODY).replace("\n", "\r\n"), "compute(\n    1)"),
        ("<fill>", ""),
    ],
)
def test_the_diff_around_the_hole_equals_the_whole_files_diff(source, text):
    s = Suggestion.at(0, Path("a.py"), source, "", find_markers(source)[0], 6000, 0.0)
    s.text, s.status = text, "ready"
    whole = difflib.unified_diff(source.splitlines(), s.edited().splitlines(), n=1, lineterm="")
    assert diff_lines(s) == list(whole)[2:]
