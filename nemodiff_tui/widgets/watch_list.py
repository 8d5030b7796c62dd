"""Watch mode's widgets: the list of suggestions, and the highlighted one in detail (its text
highlighted with Pygments in the file's context, and the diff that accepting it would make)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from nemodiff_tui.highlight import SyntaxStyles, lexer_for, line_spans
from nemodiff_tui.watch.suggestions import Suggestion

CONTEXT_LINES = 3  # lines of the file shown above and below the suggestion
GLYPHS = {
    "pending": "…",
    "denoising": "◐",
    "ready": "●",
    "stale": "↻",
    "failed": "✗",
    "accepted": "✓",
    "rejected": "–",
}


def display_path(path: Path, roots: Sequence[Path] = ()) -> str:
    """`path` relative to the working folder when it is inside it, else within the watched folder
    it is in (`project/src/a.py`); absolute only when it is in neither."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        pass
    root = max((r for r in roots if path.is_relative_to(r)), key=lambda r: len(r.parts), default=None)
    return str(path) if root is None else str(Path(root.name) / path.relative_to(root))


def shown_text(s: Suggestion) -> str:
    """The final text once ready; the committed part while it denoises."""
    if s.status == "ready" or s.trace is None:
        return s.text
    return s.trace.text


def row(s: Suggestion, roots: Sequence[Path] = ()) -> Text:
    """One line of the list: status, where, and the start of the text."""
    first = next((line.strip() for line in shown_text(s).split("\n") if line.strip()), "")
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{GLYPHS[s.status]} {display_path(s.path, roots)}:{s.line}", "bold")
    text.append(f"  {s.status}", "dim")
    if s.latency is not None:
        text.append(f" {s.latency * 1000:.0f} ms", "dim")
    if first:
        text.append(f"  {first}")
    return text


def preview(s: Suggestion, syntax: SyntaxStyles[Style], inserted: Style) -> Text:
    """The file around the hole with the suggestion in place, highlighted; the inserted text in `inserted`."""
    text = shown_text(s)
    lines = [line.removesuffix("\r") for line in s.edited(text).split("\n")]
    first = s.line - 1
    last = first + text.count("\n")
    low, high = max(0, first - CONTEXT_LINES), min(len(lines), last + CONTEXT_LINES + 1)
    window = lines[low:high]
    end_column = (s.column - 1 + len(text)) if first == last else len(text.rsplit("\n", 1)[1])
    out = []
    for i, (line, spans) in enumerate(
        zip(window, line_spans(window, lexer_for(s.path.name)), strict=True), start=low
    ):
        body = Text(line)
        for start, end, ttype in spans:
            style = syntax.get(ttype)
            if style is not None:
                body.stylize(style, start, end)
        if first <= i <= last:
            body.stylize(inserted, s.column - 1 if i == first else 0, end_column if i == last else len(line))
        out.append(Text.assemble((f"{i + 1:>5} ", "dim"), body, no_wrap=True))
    return Text("\n", no_wrap=True).join(out)


def diff_lines(s: Suggestion) -> list[str]:
    """The unified diff accepting `s` would make, a line of context around the change, headers
    dropped. Only the lines around the hole are compared (it redraws at every denoising step, and
    difflib over a whole 1 MB file took 0.3 s); the lines after them are the same in both texts."""
    old = s.source.splitlines()
    new = s.edited(shown_text(s)).splitlines()
    after = max(0, len(old) - 1 - s.source.count("\n", 0, s.hole.end))  # lines after the hole's last one
    low, keep = max(0, s.line - 2), max(0, after - 1)
    lines = difflib.unified_diff(old[low : len(old) - keep], new[low : len(new) - keep], n=1, lineterm="")
    return [
        re.sub(r"([-+])(\d+)", lambda m: f"{m[1]}{int(m[2]) + low}", line) if line.startswith("@@") else line
        for line in list(lines)[2:]
    ]


def diff_preview(s: Suggestion, added: Style, removed: Style) -> Text:
    out = Text(no_wrap=True)
    styles = {"+": added, "-": removed, "@": Style(dim=True)}
    for line in diff_lines(s):
        out.append(line + "\n", styles.get(line[:1], ""))
    return out


class SuggestionList(OptionList):
    """The open suggestions, one row each; keeps the highlighted suggestion across updates."""

    def __init__(self, roots: Sequence[Path] = (), id: str | None = None):
        super().__init__(id=id)
        self.roots = roots  # the watched folders: paths are shown within them
        self.suggestions: list[Suggestion] = []

    @property
    def selected(self) -> Suggestion | None:
        index = self.highlighted
        return self.suggestions[index] if index is not None and index < len(self.suggestions) else None

    def show(self, suggestions: list[Suggestion]) -> None:
        if [s.id for s in suggestions] == [
            s.id for s in self.suggestions
        ]:  # the same rows: update them in place
            self.suggestions = suggestions
            for s in suggestions:
                self.replace_option_prompt(str(s.id), row(s, self.roots))
            return
        selected = self.selected
        self.suggestions = suggestions
        self.clear_options()
        self.add_options([Option(row(s, self.roots), id=str(s.id)) for s in suggestions])
        if suggestions:
            self.highlighted = suggestions.index(selected) if selected in suggestions else 0


class SuggestionDetail(Static):
    """The highlighted suggestion: where, how it was made, its preview and its diff."""

    COMPONENT_CLASSES = {"detail--inserted", "detail--added", "detail--removed", "detail--label"}
    DEFAULT_CSS = """
    SuggestionDetail > .detail--inserted { background: $primary 25%; }
    SuggestionDetail > .detail--added { color: $success; }
    SuggestionDetail > .detail--removed { color: $error; }
    SuggestionDetail > .detail--label { color: $text-muted; text-style: bold; }
    """

    def __init__(self, roots: Sequence[Path] = (), id: str | None = None):
        super().__init__(id=id)
        self.roots = roots

    def show(self, s: Suggestion | None, syntax: SyntaxStyles[Style]) -> None:
        if s is None:
            self.update(
                "No suggestion yet: save a watched file with a <fill> marker, "
                "or change a file you saved before."
            )
            return
        label = self.get_component_rich_style("detail--label")
        facts = f"{display_path(s.path, self.roots)}:{s.line}:{s.column}  {s.status}  ({s.hole.rule})"
        if s.mode:
            facts += f"  {s.mode}, {s.tokens_per_forward:.2f} tokens/forward"
        if s.error:
            facts += f"  {s.error}"
        parts = [Text(facts, label), Text("")]
        if s.status == "ready" and not s.text:
            parts.append(
                Text("The model offered nothing worth inserting; accepting removes the marker.", "italic")
            )
        parts += [
            preview(s, syntax, self.get_component_rich_style("detail--inserted")),
            Text(""),
            Text("diff", label),
            diff_preview(
                s,
                self.get_component_rich_style("detail--added"),
                self.get_component_rich_style("detail--removed"),
            ),
        ]
        self.update(Text("\n").join(parts))
