"""The editor widget: its large-file document classes agree with Textual's, and its editing keys."""

from __future__ import annotations

from textual.document._document import Document
from textual.document._wrapped_document import WrappedDocument

from nemodiff_tui.widgets.editor import CodeDocument, CountedWrappedDocument

TEXT = "a\tb\n\n  x = 1\n\t\tq = '日本'\nlast"
EDITS = [
    ((0, 1), (0, 1), "xyz\n\tnew"),
    ((2, 0), (3, 2), ""),
    ((0, 0), (0, 0), "wide 日本語 line\n"),
    ((1, 0), (4, 0), "z"),
]


def test_code_document_keeps_text_and_size_true_through_edits():
    ours, theirs = CodeDocument(TEXT), Document(TEXT)
    assert ours.get_size(4) == theirs.get_size(4)
    for start, end, text in EDITS:
        ours.replace_range(start, end, text)
        theirs.replace_range(start, end, text)
        assert ours.text == theirs.text and ours.get_size(4) == theirs.get_size(4)
    assert ours.get_size(8) == theirs.get_size(8)


def test_counted_wrapped_document_matches_textual_with_and_without_wrapping():
    for width in (0, 3):
        ours, theirs = (
            CountedWrappedDocument(Document(TEXT), tab_width=4),
            WrappedDocument(Document(TEXT), tab_width=4),
        )
        ours.wrap(width, 4)
        theirs.wrap(width, 4)
        for name in ("_wrap_offsets", "_offset_to_line_info", "_line_index_to_offsets", "_tab_width_cache"):
            assert getattr(ours, name) == getattr(theirs, name)
        assert ours.height == theirs.height
        for document in (ours, theirs):
            document.document.replace_range((0, 0), (0, 0), "one\ntwo\n")
            document.wrap_range((0, 0), (0, 0), (2, 0))
        assert ours.height == theirs.height
