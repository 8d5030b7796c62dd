"""The code editor: Textual's TextArea with Pygments highlighting and multi-line ghost text.

TextArea's own `suggestion` is one line in one style. A diffusion suggestion is many lines of
committed text, guessed text and still-masked slots, so the editor draws it itself: the first
line is spliced into the cursor's line, the others are virtual lines drawn below it, pushing the
document's later lines down until the ghost goes away. Nothing of it is in the document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.events import MouseEvent
from textual.geometry import Offset, Region, Size
from textual.strip import Strip
from rich.cells import cell_len
from textual.document._document import Document, EditResult
from textual.document._document_navigator import DocumentNavigator
from textual.document._wrapped_document import WrappedDocument
from textual.expand_tabs import get_tab_widths
from textual.widgets import TextArea
from textual.widgets.text_area import Location

from nemodiff_tui.files import DiskState
from nemodiff_tui.highlight import Span, SyntaxStyles, lexer_for, line_spans

GhostKind = Literal["text", "guess", "masked"]
GhostPiece = tuple[str, GhostKind]
MASK_GLYPH = "·"  # one per still-masked slot
LEX_ABOVE, LEX_BELOW = 100, 50  # lines highlighted around the visible ones
OPENS_BLOCK = (":", "{", "(", "[")  # a line ending in one of these indents the next one a level more


def ghost_lines(pieces: list[GhostPiece], max_lines: int) -> list[list[GhostPiece]]:
    """Split ghost pieces at newlines into at most `max_lines` display lines."""
    lines: list[list[GhostPiece]] = [[]]
    for text, kind in pieces:
        for i, part in enumerate((MASK_GLYPH if kind == "masked" else text).split("\n")):
            if i:
                if len(lines) == max_lines:
                    return lines
                lines.append([])
            if part:
                lines[-1].append((part, kind))
    return lines


class CodeDocument(Document):
    """A Document that keeps its text and its lines' widths between edits.

    TextArea joins the whole text once per drawn line (to decide on a placeholder) and measures
    every line's width after each edit: on a 1 MB file those made a keystroke take most of a
    second. Here the text is joined once per edit and only the edited lines are measured again.
    """

    _text: str | None = None
    _widths: list[int] | None = None  # cell width of every line, tabs expanded to _tab_width
    _tab_width = 0

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = super().text
        return self._text

    def replace_range(self, start: Location, end: Location, text: str) -> EditResult:
        top, bottom = sorted((start, end))
        result = super().replace_range(start, end, text)
        self._text = None
        if self._widths is not None:
            rows = self.lines[top[0] : result.end_location[0] + 1]
            self._widths[top[0] : bottom[0] + 1] = [
                cell_len(line.expandtabs(self._tab_width)) for line in rows
            ]
        return result

    def get_size(self, tab_width: int) -> Size:
        if self._widths is None or tab_width != self._tab_width:
            self._tab_width = tab_width
            self._widths = [cell_len(line.expandtabs(tab_width)) for line in self.lines]
        return Size(max(self._widths, default=0), self.line_count)


class CountedWrappedDocument(WrappedDocument):
    """TextArea asks the wrapped document's height once per drawn line, and WrappedDocument sums
    over every line of the file each time: 40 lines drawn of a 1 MB file took seconds. The height
    is counted once per (re)wrap here, where all changes of the wrapping pass. Without soft wrap
    (the editor's case) a full wrap is one line per line, and only lines with tabs are measured."""

    _height: int | None = None

    def wrap(self, width: int, tab_width: int | None = None) -> None:
        self._height = None
        if width:
            super().wrap(width, tab_width)
            return
        self._width = 0
        self._tab_width = tab_width or self._tab_width
        lines = self.document.lines
        self._wrap_offsets = [[] for _ in lines]
        self._offset_to_line_info = [(i, 0) for i in range(len(lines))]
        self._line_index_to_offsets = [[i] for i in range(len(lines))]
        self._tab_width_cache = [
            [w for _, w in get_tab_widths(line, self._tab_width)] if "\t" in line else [0] if line else []
            for line in lines
        ]

    def wrap_range(self, start: Location, old_end: Location, new_end: Location) -> None:
        self._height = None
        super().wrap_range(start, old_end, new_end)

    @property
    def height(self) -> int:
        if self._height is None:
            self._height = super().height
        return self._height


class CodeEditor(TextArea):
    """One open buffer: a file (or a scratch buffer when `path` is None) and its ghost text."""

    COMPONENT_CLASSES = TextArea.COMPONENT_CLASSES | {
        "editor--ghost",
        "editor--ghost-guess",
        "editor--ghost-masked",
    }
    KEYS = [
        ("ctrl+home,ctrl+end", "start / end of the file"),
        ("enter", "new line, indented like the one above"),
        ("ctrl+z,ctrl+y", "undo / redo"),
        ("f6,f7", "select line / select all"),
    ]  # for the help
    BINDINGS = [
        Binding("ctrl+home", "document_edge(False)", "Start of file", show=False),
        Binding("ctrl+end", "document_edge(True)", "End of file", show=False),
        Binding("ctrl+shift+home", "document_edge(False, True)", "Select to start of file", show=False),
        Binding("ctrl+shift+end", "document_edge(True, True)", "Select to end of file", show=False),
    ]

    def __init__(
        self,
        text: str = "",
        path: Path | None = None,
        disk: DiskState | None = None,
        *,
        syntax: SyntaxStyles[Style],
        cursor_blink: bool = True,
        id: str | None = None,
    ):
        super().__init__(
            text, theme="css", soft_wrap=False, tab_behavior="indent", show_line_numbers=True, id=id
        )
        self.cursor_blink = cursor_blink
        self.path = path
        self.disk = disk  # the file as it was on disk when opened or last saved (None: not on disk)
        self._saved_text = text
        self._lexer = lexer_for(path.name if path else None)
        self._syntax = syntax
        self._spans: list[list[Span]] | None = None  # for the lines from _spans_start on
        self._spans_start = 0
        self._document_size: Size | None = None
        self._ghost: list[list[GhostPiece]] = []
        self._ghost_row = 0

    def _set_document(self, text: str, language: str | None) -> None:
        """TextArea's own, for a plain-text document (Pygments colours it, not tree-sitter), built
        of the classes above that keep a 1 MB file fast."""
        self._highlight_query = None
        self.document = CodeDocument(text)
        self.wrapped_document = CountedWrappedDocument(self.document, tab_width=self.indent_width)
        self.navigator = DocumentNavigator(self.wrapped_document)
        self._build_highlight_map()
        self.move_cursor((0, 0))
        self._rewrap_and_refresh_virtual_size()

    @staticmethod
    def keeps(text: str) -> bool:
        """Would the editor save `text` as it is? It splits lines at every Unicode line break and
        rejoins them with the file's first newline style, so mixed CRLF/LF, lone CRs, form feeds
        and U+2028 would all change in lines the user never touched."""
        return Document(text).text == text

    @property
    def title(self) -> str:
        name = self.path.name if self.path else "scratch"
        return f"{name} ●" if self.modified else name

    @property
    def modified(self) -> bool:
        return self.text != self._saved_text

    def mark_saved(self, path: Path, disk: DiskState) -> None:
        if path != self.path:
            self._lexer = lexer_for(path.name)
            self._spans = None
        self.path, self.disk, self._saved_text = path, disk, self.text

    def check_consume_key(self, key: str, character: str | None = None) -> bool:
        """Leave tab to the app's accept binding, which declines it when no suggestion is shown
        (then tab indents here as usual); TextArea would hide it from every binding."""
        return key != "tab" and super().check_consume_key(key, character)

    async def _on_key(self, event: events.Key) -> None:
        """Escape stays in the editor (TextArea would move focus away; the app's escape dismisses a
        suggestion), and enter indents the new line like the one before (a level more after `:`)."""
        if event.key == "escape":
            event.stop()
            event.prevent_default()
        elif event.key == "enter" and not self.read_only:
            event.stop()
            event.prevent_default()
            self._restart_blink()
            start, end = self.selection
            self._replace_via_keyboard("\n" + self.new_line_indent(), start, end)
        else:
            await super()._on_key(event)

    def new_line_indent(self) -> str:
        """The indentation of a line started at the cursor: the cursor line's, a level more when
        the text before the cursor opens a block."""
        row, column = self.cursor_location
        before = self.document[row][:column]
        indent = before[: len(before) - len(before.lstrip())]
        if before.rstrip().endswith(OPENS_BLOCK):
            indent += "\t" if self.indent_type == "tabs" else " " * self.indent_width
        return indent

    def action_document_edge(self, end: bool, select: bool = False) -> None:
        """ctrl+home / ctrl+end: to the start or the end of the file."""
        last = self.document.line_count - 1
        self.move_cursor((last, len(self.document[last])) if end else (0, 0), select=select)

    def go_to_line(self, line: int) -> None:
        """Put the cursor at the start of 1-based `line` (clamped to the file) and centre it."""
        row = min(max(line, 1), self.document.line_count) - 1
        self.move_cursor((row, 0), center=True)

    # --- highlighting ---------------------------------------------------------------------------

    def set_syntax(self, syntax: SyntaxStyles[Style]) -> None:
        self._syntax = syntax
        self._redraw()

    def _build_highlight_map(self) -> None:
        """TextArea calls this after every change of the document: spans and size are stale."""
        super()._build_highlight_map()
        self._spans = None
        self._document_size = None

    def _line_spans(self, index: int) -> list[Span]:
        """Highlight spans of line `index`, lexing the lines around the visible ones when needed.

        Lexing a whole file on every keystroke takes 0.16 s per 100 kB here; lexing from
        `LEX_ABOVE` lines above the view keeps it a few milliseconds (a string opened further up
        may be miscoloured until it scrolls into that range).
        """
        if self._spans is None or not 0 <= index - self._spans_start < len(self._spans):
            top = self.scroll_offset.y
            self._spans_start = max(0, min(index, top) - LEX_ABOVE)
            end = max(index, top + self.size.height) + LEX_BELOW
            self._spans = line_spans(self.document.lines[self._spans_start : end], self._lexer)
        return self._spans[index - self._spans_start]

    def get_line(self, line_index: int) -> Text:
        line = super().get_line(line_index)
        for start, end, ttype in self._line_spans(line_index):
            style = self._syntax.get(ttype)
            if style is not None:
                line.stylize(style, start, end)
        if self._ghost and line_index == self._ghost_row:
            column = self.cursor_location[1]
            line = Text.assemble(
                line[:column], self._ghost_text(self._ghost[0]), line[column:], end="", no_wrap=True
            )
        return line

    # --- ghost text -----------------------------------------------------------------------------

    @property
    def ghost(self) -> list[list[GhostPiece]]:
        return self._ghost

    def show_ghost(self, pieces: list[GhostPiece], max_lines: int) -> None:
        """Show `pieces` as ghost text at the cursor (an empty list hides it)."""
        lines = ghost_lines(pieces, max_lines)
        self._ghost = lines if any(lines) else []
        row, column = self.cursor_location
        self._ghost_row = row
        # TextArea crops every line to its virtual width: make room for the ghost text, up to the
        # visible width (a ghost never brings up a horizontal scrollbar).
        if self._document_size is None:  # measured once per change, not once per streamed token
            self._document_size = self.document.get_size(self.indent_width)
        width, height = self._document_size
        visible = self.scrollable_content_region.width - self.gutter_width - 1
        for i, line in enumerate(self._ghost):
            text = Text("".join(part for part, _ in line))
            text.expand_tabs(self.indent_width)
            start = self.get_column_width(row, column) + len(self.document[row]) - column if i == 0 else 0
            width = max(width, min(start + text.cell_len, visible))
        self.virtual_size = Size(width + self.gutter_width + 1, height + max(len(self._ghost) - 1, 0))
        self._redraw()

    def clear_ghost(self) -> None:
        if self._ghost:
            self.show_ghost([], 1)

    def render_lines(self, crop: Region) -> list[Strip]:
        """TextArea's own (theme styles from CSS, then the lines), but the cursor line keeps only its
        background: TextArea paints that style over the whole line, and its text colour wiped the
        syntax colours and the ghost text's colour on the cursor's line."""
        theme = self._theme
        if theme is not None:
            theme.apply_css(self)
            if theme.cursor_line_style is not None:
                theme.cursor_line_style = Style(bgcolor=theme.cursor_line_style.bgcolor)
        return super(TextArea, self).render_lines(crop)

    def render_line(self, y: int) -> Strip:
        if not self._ghost:
            return super().render_line(y)
        extra = len(self._ghost) - 1
        row = y + self.scroll_offset.y
        if row <= self._ghost_row:
            return super().render_line(y)
        if row <= self._ghost_row + extra:
            return self._ghost_strip(self._ghost[row - self._ghost_row])
        return super().render_line(y - extra)

    def get_target_document_location(self, event: MouseEvent) -> Location:
        """Where a click lands: the ghost's extra lines push the document down, so a click below
        them means the line drawn there, and a click on them leaves the cursor where it is."""
        extra = len(self._ghost) - 1
        scroll_x, scroll_y = self.scroll_offset
        row = event.y + scroll_y - self.gutter.top
        if extra <= 0 or row <= self._ghost_row:
            return super().get_target_document_location(event)
        if row <= self._ghost_row + extra:
            return self.cursor_location
        x = event.x - self.gutter_width + scroll_x - self.gutter.left
        return self.wrapped_document.offset_to_location(Offset(x, row - extra))

    def _ghost_text(self, line: list[GhostPiece]) -> Text:
        styles = {
            kind: self.get_component_rich_style(f"editor--ghost{'' if kind == 'text' else '-' + kind}")
            for kind in ("text", "guess", "masked")
        }
        return Text.assemble(*((text, styles[kind]) for text, kind in line), end="", no_wrap=True)

    def _ghost_strip(self, line: list[GhostPiece]) -> Strip:
        """A virtual line below the cursor: an empty gutter, then the ghost text."""
        text = self._ghost_text(line)
        text.expand_tabs(self.indent_width)
        gutter_width = self.gutter_width
        width = self.scrollable_content_region.width - gutter_width
        scroll_x = self.scroll_offset.x
        body = Strip(text.render(self.app.console), text.cell_len).crop(scroll_x, scroll_x + width)
        body = body.extend_cell_length(width)
        gutter = Strip(
            [Segment(" " * gutter_width, self.get_component_rich_style("text-area--gutter"))], gutter_width
        )
        return Strip.join([gutter, body]).apply_style(self.rich_style)

    def _redraw(self) -> None:
        """TextArea caches rendered lines by position; ghost text and syntax colours are not in its key."""
        self._line_cache.clear()
        self.refresh()
