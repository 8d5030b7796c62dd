from pathlib import PurePosixPath

from engine.training.corpus import HOLDOUT, _is_holdout, holdout_files


def test_holdout_rule():
    held = ["json/decoder.py", "csv.py", "test/test_csv.py", "test/test_json/test_dump.py", "textwrap.py"]
    kept = ["jsonschema.py", "test/string_tests.py", "test/test_string_literals.py", "email/csv.py", "test/test_os.py"]
    assert all(_is_holdout(PurePosixPath(p)) for p in held)
    assert not any(_is_holdout(PurePosixPath(p)) for p in kept)


def test_holdout_files_cover_every_holdout_module():
    paths = [p for p, _ in holdout_files()]
    assert paths == sorted(paths)
    tops = {p.split("/")[0].removesuffix(".py") for p in paths if not p.startswith("test/")}
    assert tops == set(HOLDOUT)
    assert "test/test_json/test_dump.py" in paths and not any("site-packages" in p for p in paths)
