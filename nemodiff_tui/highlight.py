"""Syntax highlighting with Pygments, split into per-line spans the editor styles.

Textual's TextArea highlights through tree-sitter, an optional extra that is often missing;
Pygments ships with nemodiff, so the editor uses it instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

from pygments.lexer import Lexer
from pygments.lexers import PythonLexer, TextLexer, get_lexer_for_filename
from pygments.token import _TokenType
from pygments.util import ClassNotFound

S = TypeVar("S")
Span = tuple[int, int, _TokenType]  # start column, end column, Pygments token type


def lexer_for(path: str | None) -> Lexer:
    """The lexer for a file name; Python for a scratch buffer (the demo model writes Python)."""
    options = dict(stripnl=False, ensurenl=False)
    if path is None:
        return PythonLexer(**options)
    try:
        return get_lexer_for_filename(path, **options)
    except ClassNotFound:
        return TextLexer(**options)


def line_spans(lines: Sequence[str], lexer: Lexer) -> list[list[Span]]:
    """Highlight spans for every line of a document (lexed whole, so multi-line strings are right)."""
    spans: list[list[Span]] = [[] for _ in lines]
    row = col = 0
    for ttype, value in lexer.get_tokens("\n".join(lines)):
        parts = value.split("\n")
        for i, part in enumerate(parts):
            if i:
                row, col = row + 1, 0
            if part and row < len(spans):
                spans[row].append((col, col + len(part), ttype))
            col += len(part)
    return spans


class SyntaxStyles(Generic[S]):
    """Theme styles keyed by Pygments token names ("Keyword", "Name.Function", ...): a token takes
    the style of its most specific styled ancestor."""

    def __init__(self, styles: Mapping[str, S]):
        self.styles = dict(styles)
        self._resolved: dict[_TokenType, S | None] = {}

    def get(self, ttype: _TokenType) -> S | None:
        if ttype not in self._resolved:
            t = ttype
            while t.parent is not None and str(t).removeprefix("Token.") not in self.styles:
                t = t.parent
            self._resolved[ttype] = self.styles.get(str(t).removeprefix("Token."))
        return self._resolved[ttype]
