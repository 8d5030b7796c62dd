"""nemodiff's themes, loaded from the TOML files of the top-level `themes` package.

Each file is a Textual `Theme` (registered with `App.register_theme`) with nemodiff's variables
for the denoising cells and ghost text, and a `[syntax]` table for the editor's highlighting.
Textual's own themes lack those: they fall back to the dark or light nemodiff theme's values.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from rich.style import Style
from textual.app import App
from textual.theme import Theme

from nemodiff_tui.highlight import SyntaxStyles

DARK, LIGHT = "nemodiff-dark", "nemodiff-light"
VARIABLES = (
    "nd-ghost",
    "nd-guess",
    "nd-masked",
    "nd-committed-now",
    "nd-committed",
    "nd-low-confidence",
    "nd-drafted",
    "nd-accepted",
    "nd-rejected",
)


@dataclass(frozen=True)
class NemodiffTheme:
    theme: Theme
    syntax: dict[str, str]  # Pygments token name -> Rich style


@cache
def load_themes() -> dict[str, NemodiffTheme]:
    """Every theme file in `themes/`, by theme name."""
    found: dict[str, NemodiffTheme] = {}
    for entry in sorted(resources.files("themes").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            raw = tomllib.loads(entry.read_text(encoding="utf-8"))
            syntax = raw.pop("syntax", {})
            missing = set(VARIABLES) - set(raw.get("variables", {}))
            if missing:
                raise ValueError(f"theme file {entry.name} lacks variables {sorted(missing)}")
            theme = Theme(**raw)
            found[theme.name] = NemodiffTheme(theme, syntax)
    return found


def fallback(themes: dict[str, NemodiffTheme], dark: bool) -> NemodiffTheme:
    """The nemodiff theme whose variables and syntax stand in for a theme that lacks them."""
    return themes[DARK if dark else LIGHT]


class ThemedApp(App[None]):
    """Base of nemodiff's apps: registers the themes in `themes/` and serves their syntax colours."""

    def __init__(self) -> None:
        super().__init__()
        self.nemodiff_themes = load_themes()
        for theme in self.nemodiff_themes.values():
            self.register_theme(theme.theme)
        self._syntax: dict[str, SyntaxStyles[Style]] = {}

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """Textual's own themes lack nemodiff's variables: take the dark theme's."""
        return dict(fallback(load_themes(), dark=True).theme.variables)

    def syntax_styles(self) -> SyntaxStyles[Style]:
        """Pygments token colours of the current theme (a nemodiff theme's, or the closest one's)."""
        theme = self.current_theme
        if theme.name not in self._syntax:
            source = self.nemodiff_themes.get(theme.name) or fallback(self.nemodiff_themes, theme.dark)
            self._syntax[theme.name] = SyntaxStyles({k: Style.parse(v) for k, v in source.syntax.items()})
        return self._syntax[theme.name]
