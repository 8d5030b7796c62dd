"""The open buffers, one tab each."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import TabbedContent, TabPane

from nemodiff_tui.widgets.editor import CodeEditor


class EditorTabs(TabbedContent):
    _count = 0

    async def add_editor(self, editor: CodeEditor) -> None:
        """Add `editor` in a new tab and switch to it."""
        EditorTabs._count += 1
        pane = TabPane(editor.title, editor, id=f"buffer-{EditorTabs._count}")
        await self.add_pane(pane)
        self.active = pane.id
        editor.focus()

    @property
    def editors(self) -> list[CodeEditor]:
        return list(self.query(CodeEditor))

    @property
    def current(self) -> CodeEditor | None:
        pane = self.active_pane
        return pane.query_one(CodeEditor) if pane is not None else None

    def find(self, path: Path) -> CodeEditor | None:
        resolved = path.resolve()
        return next((e for e in self.editors if e.path is not None and e.path.resolve() == resolved), None)

    def show(self, editor: CodeEditor) -> None:
        pane = self._pane_of(editor)
        self.active = pane.id
        editor.focus()

    def relabel(self, editor: CodeEditor) -> None:
        pane = self._pane_of(editor)
        tab = self.get_tab(pane)
        if str(tab.label) != editor.title:
            tab.label = editor.title

    async def close(self, editor: CodeEditor) -> None:
        await self.remove_pane(self._pane_of(editor).id)

    def cycle(self, step: int) -> None:
        editors = self.editors
        current = self.current
        if current is not None and len(editors) > 1:
            self.show(editors[(editors.index(current) + step) % len(editors)])

    def _pane_of(self, editor: CodeEditor) -> TabPane:
        pane = editor.parent
        assert isinstance(pane, TabPane)
        return pane
