"""`nemodiff complete` end to end, in-process: output shapes and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nemodiff_tui.cli import main


def complete(capsys, *args):
    code = main(["complete", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_has_the_contract_fields(capsys, tiny_checkpoint):
    code, out, _ = complete(
        capsys,
        "--model",
        str(tiny_checkpoint),
        "--prompt",
        "def f(x):",
        "--mode",
        "ar",
        "--max-new-tokens",
        "7",
        "--json",
    )
    r = json.loads(out)
    assert code == 0
    for key in (
        "text",
        "prompt_token_ids",
        "token_ids",
        "n_tokens",
        "nfe",
        "tokens_per_forward",
        "seconds",
        "tokens_per_second",
        "mode",
        "model",
        "device",
    ):
        assert key in r
    assert r["n_tokens"] == len(r["token_ids"]) == 7 and r["mode"] == "ar" and r["device"] == "cpu"


def test_stream_prints_one_json_event_per_line(capsys, tiny_checkpoint):
    code, out, _ = complete(
        capsys,
        "--model",
        str(tiny_checkpoint),
        "--prefix",
        "def add(a, b):\n    ",
        "--suffix",
        "\n",
        "--mode",
        "diffusion",
        "--block-size",
        "4",
        "--max-new-tokens",
        "9",
        "--stream",
    )
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and events[-1]["type"] == "done"
    assert {"step", "commit"} <= {e["type"] for e in events}
    assert any(e["type"] == "step" and e["kind"] == "denoise" for e in events)


class ScriptedEngine:
    """Commits the given text pieces, one per forward pass, and stops when cancelled, as the
    engine does: the stop rules of a fill-in-the-middle completion, without a model."""

    name, device = "scripted", "cpu"

    def __init__(self, pieces: list[str]):
        self.pieces = pieces
        self.cancelled = False

    def generate(self, request):
        self.cancelled = False
        return self

    def cancel(self):
        self.cancelled = True

    def __iter__(self):
        from engine.events import Commit, Done

        n = 0
        for piece in self.pieces:
            if self.cancelled:
                break
            n += 1
            yield Commit([n], piece, n)
        text = "".join(self.pieces[:n])
        yield Done(
            text, list(range(n)), n, n, 1.0, 0.1, 10 * n, "ar", "cancelled" if self.cancelled else "eos"
        )


BODY = [
    '    """Add."""',
    "\n",
    "    return a + b",
    "\n",
    "\n",
    "def",
    " sub(a, b):",
    "\n",
    "    return a - b",
]


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_fim_stops_where_the_code_dedents_below_the_cursor(capsys, monkeypatch, fmt):
    from nemodiff_tui.cli import complete as cli

    scripted = ScriptedEngine(BODY)
    monkeypatch.setattr(cli, "open_engine", lambda args: scripted)
    args = ["--prefix", "def add(a, b):\n", "--suffix", "\n\nprint(add(1, 2))\n"] + (
        ["--json"] if fmt == "json" else []
    )
    code, out, _ = complete(capsys, *args)
    body = '    """Add."""\n    return a + b'
    assert code == 0 and scripted.cancelled  # generation stopped at "def", not at the end
    if fmt == "json":
        r = json.loads(out)
        assert r["text"].rstrip() == body and r["stop_reason"] == "stop_rule"
    else:
        assert out == body + "\n"


def test_fim_stays_on_the_line_when_text_follows_the_cursor_and_raw_prints_everything(capsys, monkeypatch):
    from nemodiff_tui.cli import complete as cli

    scripted = ScriptedEngine(["a + b", "\n", "    x = 1"])
    monkeypatch.setattr(cli, "open_engine", lambda args: scripted)
    assert complete(capsys, "--prefix", "    return ", "--suffix", "  # sum\n")[1] == "a + b\n"
    assert (
        complete(capsys, "--prefix", "    return ", "--suffix", "  # sum\n", "--raw")[1]
        == "a + b\n    x = 1\n"
    )
    assert not scripted.cancelled


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_fim_ends_a_loop_and_before_the_bracket_right_of_the_cursor(capsys, monkeypatch, fmt):
    from nemodiff_tui.cli import complete as cli

    for chunks, suffix, expected in [
        (["2, 3, 4"] + [", 5"] * 30, ")\n", "2, 3, 4, 5"),  # a loop: one round stays
        (["foo", ")", ":"], ")\n", "foo"),
    ]:  # `f(foo))` would double the bracket
        scripted = ScriptedEngine(chunks)
        monkeypatch.setattr(cli, "open_engine", lambda args: scripted)
        code, out, _ = complete(
            capsys, "--prefix", "f(", "--suffix", suffix, *(["--json"] if fmt == "json" else [])
        )
        assert code == 0 and scripted.cancelled
        assert (json.loads(out)["text"] if fmt == "json" else out) == expected + (
            "" if fmt == "json" else "\n"
        )


def test_plain_output_is_the_text(capsys, tiny_checkpoint, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"import os\n")))
    code, out, _ = complete(capsys, "--model", str(tiny_checkpoint), "--max-new-tokens", "5", "--mode", "ar")
    assert code == 0 and out.endswith("\n")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "/no/such/dir", "--prompt", "x"], "no such directory"),
        (["--mode", "fast", "--prompt", "x"], "invalid choice"),
        (["--max-new-tokens", "0", "--prompt", "x"], "max_new_tokens must be positive"),
        (["--max-new-tokens", "-3", "--prompt", "x"], "max_new_tokens must be positive"),
        (["--temperature", "nan", "--prompt", "x"], "temperature must lie in [0, 100]"),
        (["--temperature", "1e308", "--prompt", "x"], "temperature must lie in [0, 100]"),
        (["--temperature", "0.5", "--seed", str(2**64), "--prompt", "x"], "seed must be a 64-bit integer"),
        (["--block-size", "100000", "--prompt", "x"], "block_size must lie in [2, 256]"),
        (["--prompt", "x", *[a for i in range(17) for a in ("--stop", str(i))]], "at most 16 stop strings"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tiny_checkpoint, args, message):
    if "--model" not in args:
        args = ["--model", str(tiny_checkpoint), *args]
    with pytest.raises(SystemExit) if message == "invalid choice" else _no_raise() as e:
        code, _, err = complete(capsys, *args)
    if message == "invalid choice":
        assert e.value.code == 2
        return
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_undecodable_prompt_file(capsys, tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_bytes(b"def f():\n    return '\xff\xfe'\n")
    code, _, err = complete(capsys, "--model", str(tiny_checkpoint), "--prompt-file", str(bad))
    assert code == 2 and "not valid UTF-8" in err and "0xff" in err


def test_corrupt_checkpoint(capsys, tiny_checkpoint, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    code, _, err = complete(capsys, "--model", str(broken), "--prompt", "x")
    assert code == 2 and "model.safetensors" in err and err.count("\n") == 1


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(Exception):
        main(["--debug", "complete", "--model", "/no/such/dir", "--prompt", "x"])


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_settings_file_picks_the_mode(capsys, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "nemodiff").mkdir()
    (tmp_path / "nemodiff" / "config.toml").write_text('mode = "diffusion"\n')
    args = ["--model", str(tiny_checkpoint), "--prompt", "x", "--max-new-tokens", "3", "--json"]
    code, out, _ = complete(capsys, *args)
    assert code == 0 and json.loads(out)["mode"] == "diffusion"
    code, out, _ = complete(capsys, *args, "--mode", "ar")  # one request overrides it
    assert json.loads(out)["mode"] == "ar"


def test_auto_diffusion_from_the_flag_or_the_settings_file(tmp_path, monkeypatch):
    import argparse

    from nemodiff_tui.cli.common import add_generation_args, generation_config

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    parser = argparse.ArgumentParser()
    add_generation_args(parser)
    parser.add_argument("--config", default=None)
    assert not generation_config(parser.parse_args([])).auto_diffusion  # lossless unless asked
    assert generation_config(parser.parse_args(["--auto-diffusion"])).auto_diffusion
    (tmp_path / "nemodiff").mkdir()
    (tmp_path / "nemodiff" / "config.toml").write_text("auto_diffusion = true\n")
    assert generation_config(parser.parse_args([])).auto_diffusion


def test_the_settings_file_picks_the_model_and_a_flag_overrides_it(
    capsys, tiny_checkpoint, tmp_path, monkeypatch
):
    """One rule for the app and every command: a flag, else the settings file, else the default."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "nemodiff").mkdir()
    (tmp_path / "nemodiff" / "config.toml").write_text(f"model = '{tiny_checkpoint}'\ndevice = 'cpu'\n")
    code, out, _ = complete(capsys, "--prompt", "x", "--mode", "ar", "--max-new-tokens", "2", "--json")
    assert code == 0 and json.loads(out)["model"] == str(tiny_checkpoint)
    code, _, err = complete(capsys, "--model", "/no/such/dir", "--prompt", "x")
    assert code == 2 and "/no/such/dir" in err


def test_the_command_line_starts_without_importing_transformers():
    """transformers takes about a second to import; `nemodiff complete` on an NLD model never needs it
    (its parser includes the training commands, whose modules import it only when they run)."""
    code = "import sys; from nemodiff_tui.cli import parser; parser(); print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_readme_prompt_example_prints_code_with_the_demo_model(capsys):
    prompt = "def add(a, b):\n    return"
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert (
        "--prompt $'def add(a, b):\\n    return'" in readme
        and "printf 'def add(a, b):\\n    return'" in readme
    )
    code, out, _ = complete(capsys, "--prompt", prompt, "--mode", "ar", "--max-new-tokens", "6")
    assert code == 0 and out.strip()  # not only whitespace
