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
    assert (
        json.loads((model / "linear_spec_lora" / "adapter_config.json").read_text())["nemodiff"][
            "trained_steps"
        ]
        == 1
    )
    assert engine.load(str(model)).lora_loaded


def test_train_draft_refuses_to_resume_nothing(tmp_path, tiny_checkpoint, capsys):
    assert main(["train-draft", "--model", str(tiny_checkpoint), "--resume", "--steps", "1"]) == 2
    assert "no adapter to resume" in capsys.readouterr().err


def test_train_draft_never_replaces_a_trained_adapter_unasked(tmp_path, tiny_checkpoint, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, model)
    assert main(["train-draft", "--model", str(model), "--steps", "1"]) == 0
    adapter = (model / "linear_spec_lora" / "adapter_model.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["train-draft", "--model", str(model), "--steps", "1"]) == 2
    assert "exists: --resume continues it" in capsys.readouterr().err
    assert (model / "linear_spec_lora" / "adapter_model.safetensors").read_bytes() == adapter


def test_set_changes_a_new_runs_settings_by_field_type():
    from engine.training.cli import settings_from

    s = settings_from(["batch_size=128", "lr=8e-3", "blocks=8,32"])
    assert (s.batch_size, s.lr, s.blocks) == (128, 8e-3, (8, 32))


def test_set_refuses_unknown_fields_bad_values_and_resumed_runs(tmp_path, capsys):
    for args in (["--set", "depth=3"], ["--set", "batch_size=lots"], ["--resume", "--set", "lr=1e-3"]):
        assert main(["train-demo", "--out", str(tmp_path / "run"), *args]) == 2
        message = capsys.readouterr().err
        assert message.startswith("nemodiff: error: --set") or "--set shapes a new run" in message
        assert message.count("\n") == 1
    assert not (tmp_path / "run").exists()
    assert main(["train-demo", "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "no checkpoint to resume" in capsys.readouterr().err
