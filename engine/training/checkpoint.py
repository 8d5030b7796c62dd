"""A run's resumable state: `checkpoint/state.pt` holds the weights, optimizer moments, the step,
the data stream's position and both random generators, so a resumed run continues exactly."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.model.network import NLDModel
from engine.training.export import export_weights, fresh_dir, replace_dir
from engine.training.settings import Settings


@dataclass
class Progress:
    """Where a run stands; saved with every checkpoint."""

    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    restart: int = 0  # the step a run started from an export began at: it warms up again from there
    cooldown: tuple[int, int] | None = None  # (first step, length) of a learning-rate cooldown


def find(out: Path) -> Path | None:
    """The run's newest complete checkpoint (a crash mid-save leaves `checkpoint.old`)."""
    for name in ("checkpoint", "checkpoint.old"):
        if (out / name / "state.pt").exists():
            return out / name / "state.pt"
    return None


def read(path: Path) -> tuple[dict[str, Any], Settings]:
    """A checkpoint's state, and the settings of its run (which win over any given on resume)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state, Settings(**{**state["settings"], "blocks": tuple(state["settings"]["blocks"])})


def save(
    out: Path,
    model: NLDModel,
    optimizer: torch.optim.Optimizer,
    data: dict[str, Any],
    noise: torch.Generator,
    progress: Progress,
    seed: int,
    s: Settings,
    corpus: dict[str, Any],
) -> None:
    tmp = fresh_dir(out / "checkpoint.tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "data": data,
            "noise_rng": noise.get_state(),
            "step": progress.step,
            "tokens": progress.tokens,
            "train_seconds": progress.train_seconds,
            "seed": seed,
            "settings": dataclasses.asdict(s),
            "cooldown": progress.cooldown,
            "restart": progress.restart,
            "corpus": corpus,
        },
        tmp / "state.pt",
    )
    replace_dir(tmp, out / "checkpoint")


def restore(
    state: dict[str, Any], model: NLDModel, optimizer: torch.optim.Optimizer, stream, noise: torch.Generator
) -> Progress:
    """Put a checkpoint's state back into the run's objects; an unfinished cooldown continues."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    stream.load_state_dict(state["data"])
    noise.set_state(state["noise_rng"])
    step = state["step"]
    cooldown = tuple(state["cooldown"]) if state.get("cooldown") and step < sum(state["cooldown"]) else None
    return Progress(step, state["tokens"], state["train_seconds"], state.get("restart", 0), cooldown)


def warm_start(model: NLDModel, src: Path, log_path: Path) -> Progress:
    """Load an export's weights into `model` and continue its log (fresh optimizer state)."""
    model.load_state_dict(export_weights(src))
    src_log = src / "training_log.jsonl"
    if not src_log.exists():
        log_path.unlink(missing_ok=True)
        return Progress()
    shutil.copyfile(src_log, log_path)
    last = json.loads(src_log.read_text().splitlines()[-1])
    return Progress(last["step"], last["tokens"], last["wall_s"], restart=last["step"])


def truncate_log(log: Path, step: int) -> None:
    """Drop log records written after the checkpoint being resumed (they will be redone)."""
    if log.exists():
        keep = [line for line in log.read_text().splitlines() if json.loads(line)["step"] <= step]
        log.write_text("".join(line + "\n" for line in keep))
