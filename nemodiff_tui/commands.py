"""The command palette (ctrl+p): mode, model, theme, replay, files, tabs and suggestions by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from engine.request import MODES

if TYPE_CHECKING:
    from nemodiff_tui.app import NemodiffApp


class NemodiffCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = cast("NemodiffApp", self.app)
        commands: list[tuple[str, Callable[[], object], str]] = [
            (f"Mode: {mode}", partial(app.set_mode, mode), "decoding mode of the next completions")
            for mode in MODES
        ]
        commands.append(
            ("Model: load…", app.action_switch_model, "a checkpoint directory, Hugging Face id or demo")
        )
        for model in dict.fromkeys(("demo", app.settings.model)):
            commands.append((f"Model: {model}", partial(app.load_model, model), "load this model"))
        commands += [
            (f"Theme: {name}", partial(app.use_theme, name), "colours of the app and the denoising cells")
            for name in app.nemodiff_themes
        ]
        commands += [
            ("Replay last generation", app.action_replay, "slow-motion replay in the denoising view (f5)"),
            ("Toggle denoising view", app.action_toggle_panel, "show or hide the denoising panel (f3)"),
            ("Open file…", app.action_open, "open a file in a new tab (ctrl+o)"),
            ("New scratch buffer", app.action_new, "an empty buffer (ctrl+n)"),
            ("Save", app.action_save, "save the file (ctrl+s)"),
            ("Save as…", app.action_save_as, "save the buffer under another name"),
            ("Reload from disk", app.action_reload, "read the file again (asks if unsaved)"),
            ("Close tab", app.action_close, "close the tab (ctrl+w; asks if unsaved)"),
            ("Go to line…", app.action_go_to_line, "move the cursor to a line (ctrl+l)"),
            ("Next suggestion", partial(app.action_cycle, 1), "next alternative suggestion (f8)"),
            (
                "Previous suggestion",
                partial(app.action_cycle, -1),
                "previous alternative suggestion (shift+f8)",
            ),
        ]
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
