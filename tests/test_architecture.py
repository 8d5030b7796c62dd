"""The layer contracts hold (import-linter, pyproject.toml; docs/ARCHITECTURE.md), and the core never imports the UI."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("textual", "nemodiff_tui")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_engine_and_kernels_never_import_the_ui():
    offenders = []
    for package in ("engine", "kernels"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imported_modules(path):
                if name.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, offenders


def test_import_linter_contract_holds():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0


def test_the_check_itself_catches_an_offender(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from textual.app import App\nimport nemodiff_tui.app\n")
    assert {"textual.app", "nemodiff_tui.app"} <= imported_modules(bad)
