"""`nemodiff watch`: the headless `--once FILE --json` on the tiny checkpoint, and one-line errors."""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import pytest

from engine.errors import NemodiffError
from engine.request import GenerationConfig
from nemodiff_tui.cli import watch
from nemodiff_tui.watch.session import WatchSession
from tests.watch.util import ready, wait_until


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nemodiff")
    watch.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["watch", *argv])


def test_once_json_prints_the_suggestions_for_the_file_holes(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "a.py"
    data = b"def add(a, b):\n    # <fill>\n\nprint(add(1, <fill>))\n"
    path.write_bytes(data)
    args = parse(
        [
            "--once",
            str(path),
            "--json",
            "--model",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--max-new-tokens",
            "8",
        ]
    )
    assert args.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"path", "sha256", "suggestions"}
    assert out["path"] == str(path) and out["sha256"] == hashlib.sha256(data).hexdigest()
    assert [(s["line"], s["column"]) for s in out["suggestions"]] == [(2, 5), (4, 14)]
    for s in out["suggestions"]:
        assert set(s) == {"line", "column", "text", "mode", "tokens_per_forward"}
        assert isinstance(s["text"], str) and s["mode"] and s["tokens_per_forward"] > 0
    assert path.read_bytes() == data  # --once never writes


def test_once_without_a_marker_prints_no_suggestion_and_loads_no_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    args = parse(["--once", str(path), "--json", "--model", str(tmp_path / "no-such-model")])
    assert args.run(args) == 0
    assert json.loads(capsys.readouterr().out)["suggestions"] == []


@pytest.mark.parametrize(
    "argv, why",
    [
        (["--json", "x.py"], "--json goes with --once"),
        ([], "give the files and folders to watch"),
        (["no/such/folder"], "no such file or folder"),
        (["--once", "BINARY"], "binary"),
        (["--once", "no/such.py"], "cannot read"),
        (["--once", "a.py", "--marker", ""], "marker must be non-empty"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, monkeypatch, argv, why):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "BINARY").write_bytes(b"\x00\x01<fill>")
    (tmp_path / "a.py").write_text("x = <fill>\n")
    args = parse(argv)
    with pytest.raises(NemodiffError, match=why) as error:
        args.run(args)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("limit", ["0", str(4 * 2**20 + 1)])
def test_max_bytes_must_be_positive_and_within_what_the_editor_reads(limit, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(["--once", "a.py", "--max-bytes", limit])
    assert exit_.value.code == 2 and "must be from 1 to 4,194,304" in capsys.readouterr().err
    assert parse(["--once", "a.py", "--max-bytes", str(4 * 2**20)]).max_bytes == 4 * 2**20


def test_save_to_suggestion_latency_on_the_tiny_checkpoint(tmp_path, tiny_checkpoint, capsys):
    """End to end: a real engine, real events; reports the save-to-suggestion latency."""
    import engine

    eng = engine.load(str(tiny_checkpoint), device="cpu")
    session = WatchSession([tmp_path], GenerationConfig(max_new_tokens=32))
    session.set_engine(eng)
    session.start()
    try:
        latencies = []
        for i in range(3):
            path = tmp_path / f"m{i}.py"
            saved = time.monotonic()
            path.write_text(f"def f{i}(x):\n    # <fill>\n")
            wait_until(lambda path=path: ready(session, path), timeout=20, what="the suggestion")
            [s] = ready(session, path)
            assert s.latency is not None and s.latency <= time.monotonic() - saved
            latencies.append(s.latency)
    finally:
        session.stop()
    with capsys.disabled():
        print(
            f"\nsave-to-suggestion latency, tiny checkpoint on CPU, {s.mode}: "
            + ", ".join(f"{x * 1000:.0f} ms" for x in latencies)
        )
