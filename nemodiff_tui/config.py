"""Settings: defaults, overridden by the TOML file at the XDG config path, overridden by the command line.

    # $XDG_CONFIG_HOME/nemodiff/config.toml (default ~/.config/nemodiff/config.toml)
    mode = "self-spec"
    model = "demo"
    theme = "nemodiff-light"
    debounce_ms = 300
    [keys]              # binding id = keys, as in the f1 help
    accept = "tab,ctrl+t"

A broken file never stops the app: its problems are reported and the defaults stay.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.request import MODES


@dataclass(frozen=True)
class Settings:
    model: str = "demo"
    mode: str = "auto"
    auto_diffusion: bool = False  # `auto` may pick diffusion where it is fastest (not lossless)
    device: str = "auto"
    dtype: str | None = None
    theme: str = "nemodiff-dark"
    debounce_ms: int = 300  # pause in typing before a completion is requested
    max_new_tokens: int = 64
    max_lines: int = 10  # longest suggestion shown
    context_chars: int = 6000  # fill-in-the-middle context, split about 3:1 prefix:suffix
    alternatives: int = 1  # suggestions sampled per position (the first one greedy)
    alternative_temperature: float = 0.8
    prefetch: bool = True  # compute the next suggestion as if the shown one were accepted (llama.vim)
    replay_fps: float = 4.0  # slow-motion replay speed of the denoising view
    cursor_blink: bool = True
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> keys (Textual keymap)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


_POSITIVE = {"max_new_tokens", "max_lines", "context_chars", "alternatives", "replay_fps"}


def config_path(environ: dict[str, str] | os._Environ = os.environ) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nemodiff" / "config.toml"


def load_settings(path: Path | None = None) -> tuple[Settings, list[str]]:
    """Settings from `path` (default: the XDG path) and one line per problem found in it.

    A missing file means defaults; an unreadable or malformed one means defaults plus a problem; a
    bad value keeps that setting's default.
    """
    path = path or config_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings(), []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return Settings(), [f"{path}: {e}; using the default settings"]
    return from_dict(raw, str(path))


def from_dict(raw: dict[str, Any], origin: str = "config") -> tuple[Settings, list[str]]:
    defaults = Settings()
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in raw.items():
        if name not in fields:
            problems.append(f"{origin}: unknown setting {name!r}")
            continue
        problem = _check(name, value, getattr(defaults, name))
        if problem:
            problems.append(f"{origin}: {name}: {problem}; keeping {getattr(defaults, name)!r}")
        else:
            values[name] = float(value) if isinstance(getattr(defaults, name), float) else value
    return defaults.replace(**values), problems


def _check(name: str, value: Any, default: Any) -> str | None:
    """Why `value` cannot stand for the setting whose default is `default`, or None."""
    if name == "dtype":
        return None if value is None or isinstance(value, str) else "expected a string"
    if name == "keys":
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
        return None if ok else 'expected a table of binding id = "keys"'
    if isinstance(default, (bool, str)):
        if not isinstance(value, type(default)):
            return f"expected a {type(default).__name__}"
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        return "expected a number"
    elif isinstance(default, int) and not isinstance(value, int):
        return "expected a whole number"
    if name == "mode" and value not in MODES:
        return f"unknown mode {value!r} (choose {', '.join(MODES)})"
    if name in _POSITIVE and value <= 0:
        return "must be positive"
    if isinstance(default, int) and not isinstance(default, bool) and value < 0:
        return "must not be negative"
    return None


def save_setting(path: Path, name: str, value: str) -> None:
    """Set top-level string setting `name` in the TOML file at `path`, keeping every other line
    (comments included); the file is created when missing."""
    from nemodiff_tui.files import atomic_write

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    line = f"{name} = {json.dumps(value)}"  # a JSON string is a TOML basic string
    top = next((i for i, text in enumerate(lines) if text.lstrip().startswith("[")), len(lines))
    at = next((i for i in range(top) if re.match(rf"\s*{re.escape(name)}\s*=", lines[i])), None)
    if at is None:
        lines.insert(top, line)
    else:
        lines[at] = line
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "\n".join(lines) + "\n")
