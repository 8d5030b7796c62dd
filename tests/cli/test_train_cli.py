"""`nemodiff train-draft`: the command trains and writes an adapter the loader then uses."""

from __future__ import annotations

import json
import shutil

import engine
from nemodiff_tui.cli import main


def test_train_draft_writes_an_adapter_the_engine_loads(tmp_path, tiny_checkpoint, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, model)
    assert main(["train-draft", "--model", str(model), "--steps", "1"]) == 0
    assert "adapter written to" in capsys.readouterr().out
    assert json.loads((model / "linear_spec_lora" / "adapter_config.json").read_text())["nemodiff"]["trained_steps"] == 1
    assert engine.load(str(model)).lora_loaded


def test_train_draft_refuses_to_resume_nothing(tmp_path, tiny_checkpoint, capsys):
    assert main(["train-draft", "--model", str(tiny_checkpoint), "--resume", "--steps", "1"]) != 0
    assert "no adapter training to resume" in capsys.readouterr().err
