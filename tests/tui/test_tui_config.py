"""Settings from the XDG config file: defaults, overrides, and broken files that never crash."""

from __future__ import annotations

from pathlib import Path

from nemodiff_tui.config import Settings, config_path, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nemodiff" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_xdg_path():
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/nemodiff/config.toml")
    assert config_path({}) == Path.home() / ".config" / "nemodiff" / "config.toml"


def test_missing_file_is_defaults(tmp_path: Path):
    assert load_settings(tmp_path / "none.toml") == (Settings(), [])


def test_mode_is_one_line(tmp_path: Path):
    settings, problems = load_settings(
        write(
            tmp_path,
            'mode = "self-spec"\ndebounce_ms = 150\nalternative_temperature = 1\n[keys]\naccept = "ctrl+l"\n',
        )
    )
    assert problems == []
    assert settings.mode == "self-spec" and settings.debounce_ms == 150
    assert settings.alternative_temperature == 1.0 and settings.keys == {"accept": "ctrl+l"}


def test_malformed_file_is_one_problem_and_defaults(tmp_path: Path):
    settings, problems = load_settings(write(tmp_path, 'mode = "self-spec\n'))
    assert settings == Settings()
    assert len(problems) == 1 and "config.toml" in problems[0]


def test_bad_values_keep_their_defaults(tmp_path: Path):
    settings, problems = load_settings(
        write(
            tmp_path,
            'mode = "fast"\ndebounce_ms = -1\nmax_lines = "9"\n'
            'cursor_blink = 1\ncolour = "red"\nmodel = "demo"\n',
        )
    )
    assert settings == Settings()
    assert len(problems) == 5
    assert any("unknown mode 'fast'" in p for p in problems) and any("colour" in p for p in problems)
