"""The f1 help screen: every key as currently mapped, and where the settings live."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str, str]], config_path: str):
        super().__init__()
        self.keys = keys
        self.config_path = config_path

    def compose(self) -> ComposeResult:
        rows = "\n".join(f"| `{keys}` | {text} | `{binding_id}` |" for keys, binding_id, text in self.keys)
        text = f"""\
# nemodiff

Code completion on a diffusion language model. Type and pause: a suggestion appears as ghost
text at the cursor, filling in as the model denoises it (`·` marks a slot not decided yet).
The panel below the editor shows the block being denoised; replay it step by step.

| keys | action | id (for `[keys]`) |
|---|---|---|
{rows}

Settings and key remapping: `{self.config_path}` (TOML), e.g. `mode = "self-spec"`,
`debounce_ms = 300`, and a `[keys]` table of binding id = keys (`accept = "tab"`).
"""
        with VerticalScroll(classes="dialog help"):
            yield Markdown(text)
