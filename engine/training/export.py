"""Exported models: the NLD-format directory (config.json, bf16 model.safetensors, tokenizer) a
run refreshes at every checkpoint, read back to continue training, and the directory swaps that
keep a crash from leaving half of one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

from engine.model.config import ModelConfig
from engine.model.network import NLDModel

if TYPE_CHECKING:  # transformers is imported where it is used
    from transformers import PreTrainedTokenizerFast


def replace_dir(tmp: Path, final: Path) -> None:
    """Swap a fully written `tmp` into place; a crash leaves `final` or `final.old` intact."""
    old = final.with_name(final.name + ".old")
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def save_bf16(tensors: dict[str, torch.Tensor], file: Path) -> None:
    """Tensors as a bf16 safetensors file that everyone may read (save_file creates it owner-only)."""
    save_file(
        {k: v.detach().to(torch.bfloat16).contiguous().cpu() for k, v in tensors.items()},
        file,
        metadata={"format": "pt"},
    )
    file.chmod(0o644)


def export(model: NLDModel, tokenizer: PreTrainedTokenizerFast, out: Path, log: Path | None = None) -> None:
    """Write the model in NLD format: config.json, bf16 model.safetensors, tokenizer files."""
    tmp = fresh_dir(out.with_name(out.name + ".tmp"))
    (tmp / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    save_bf16(model.state_dict(), tmp / "model.safetensors")
    tokenizer.save_pretrained(tmp)
    if log is not None and log.exists():
        shutil.copyfile(log, tmp / log.name)
    replace_dir(tmp, out)


def export_weights(src: Path) -> dict[str, torch.Tensor]:
    """An exported model's weights in fp32 (what training continues from)."""
    return {k: v.float() for k, v in load_file(src / "model.safetensors").items()}


def load_export(src: Path) -> NLDModel:
    """An exported model (config.json + model.safetensors) in fp32, for further training."""
    model = NLDModel(ModelConfig.from_dict(json.loads((src / "config.json").read_text())))
    model.load_state_dict(export_weights(src))
    return model
