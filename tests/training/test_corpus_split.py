import json
from pathlib import Path, PurePosixPath

import pytest

from engine.evaluation.corpus import HOLDOUT, _is_holdout, holdout_files, stdlib_root, train_files
from engine.training.trainer import train
from tests.training.util import TINY


def test_holdout_rule():
    held = ["json/decoder.py", "csv.py", "test/test_csv.py", "test/test_json/test_dump.py", "textwrap.py"]
    kept = [
        "jsonschema.py",
        "test/string_tests.py",
        "test/test_string_literals.py",
        "email/csv.py",
        "test/test_os.py",
    ]
    assert all(_is_holdout(PurePosixPath(p)) for p in held)
    assert not any(_is_holdout(PurePosixPath(p)) for p in kept)


def test_holdout_files_cover_every_holdout_module():
    paths = [p for p, _ in holdout_files()]
    assert paths == sorted(paths)
    tops = {p.split("/")[0].removesuffix(".py") for p in paths if not p.startswith("test/")}
    assert tops == set(HOLDOUT)
    assert "test/test_json/test_dump.py" in paths and not any("site-packages" in p for p in paths)


def _library(root: Path, with_tests: bool) -> Path:
    """A small standard library: two training modules, one held-out module, maybe a test package."""
    real = stdlib_root()
    for name in ("abc.py", "copy.py", "textwrap.py"):
        (root / name).write_text((real / name).read_text(encoding="utf-8"))
    if with_tests:
        (root / "test").mkdir()
        (root / "test" / "__init__.py").write_text("")
        (root / "test" / "test_textwrap.py").write_text("import textwrap\n")
    return root


def test_a_library_without_its_test_suite_is_refused_in_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no test/ package.*--stdlib"):
        train(tmp_path / "run", max_steps=1, settings=TINY, stdlib=_library(tmp_path, with_tests=False))
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_training_reads_the_named_library(tmp_path):
    (tmp_path / "lib").mkdir()
    lib = _library(tmp_path / "lib", with_tests=True)
    assert [p for p, _ in train_files(lib)] == ["abc.py", "copy.py", "test/__init__.py"]
    assert [p for p, _ in holdout_files(lib)] == ["test/test_textwrap.py", "textwrap.py"]
    export = train(tmp_path / "run", max_steps=1, settings=TINY, stdlib=lib)
    record = json.loads((export.parent / "training_log.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 1 and 0 < record["epochs"] < 1
