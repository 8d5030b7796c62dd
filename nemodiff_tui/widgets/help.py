"""The f1 help screen: every key as currently mapped, and where the settings live."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str, str]], panel: list[tuple[str, str]], config_path: str):
        """`keys`: (keys, what they do, binding id or "" when not remappable); `panel`: the
        denoising view's own keys, active while it has focus."""
        super().__init__()
        self.keys = keys
        self.panel = panel
        self.config_path = config_path

    def compose(self) -> ComposeResult:
        rows = "\n".join(
            f"| `{keys}` | {text} | {f'`{binding_id}`' if binding_id else '—'} |"
            for keys, text, binding_id in self.keys
        )
        panel = "\n".join(f"| `{keys}` | {text} |" for keys, text in self.panel)
        text = f"""\
# nemodiff

Code completion on a diffusion language model. Type and pause: a suggestion appears as ghost
text at the cursor, filling in as the model denoises it (`·` marks a slot not decided yet).
The panel below the editor shows the block being denoised; replay it step by step.

| keys | action | id (for `[keys]`) |
|---|---|---|
{rows}

With the denoising view focused (click it):

| keys | action |
|---|---|
{panel}

Settings and key remapping: `{self.config_path}` (TOML), e.g. `mode = "self-spec"`,
`debounce_ms = 300`, and a `[keys]` table of binding id = keys (`accept = "tab"`).
Alt keys (`alt+]`) reach the app only in terminals with the kitty keyboard protocol; the
function-key and ctrl defaults work in every terminal, tmux included.
"""
        with VerticalScroll(classes="dialog help"):
            yield Markdown(text)
