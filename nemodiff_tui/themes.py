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

from textual.theme import Theme

DARK, LIGHT = "nemodiff-dark", "nemodiff-light"
VARIABLES = ("nd-ghost", "nd-guess", "nd-masked", "nd-committed-now", "nd-committed", "nd-low-confidence",
             "nd-drafted", "nd-accepted", "nd-rejected")


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
