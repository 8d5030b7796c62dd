"""Train the bundled demo model on the standard library; resumable across sessions of any length.

`train(out_dir, minutes)` runs for a time budget and can be resumed exactly (`resume=True`, see
checkpoint.py). Every checkpoint also refreshes `export/`, the model in NLD format (export.py),
so the current model can be tried at any time. The settings are settings.py's, the learning-rate
schedule and optimiser schedule.py's.

Layout of `out_dir`: tokenizer/, checkpoint/ (state.pt), export/, training_log.jsonl.
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from engine.errors import NemodiffError
from engine.evaluation import corpus
from engine.model.network import NLDModel
from engine.prompts.bpe import build_tokenizer, text_encoder
from engine.training import checkpoint
from engine.training.checkpoint import Progress
from engine.training.data import TrainStream, eval_sequences
from engine.training.export import export, fresh_dir, replace_dir
from engine.training.objective import Losses, joint_loss
from engine.training.prefetch import Prefetcher
from engine.training.schedule import lr_at, make_optimizer, mixed_precision
from engine.training.settings import Settings, model_config

if TYPE_CHECKING:  # transformers is imported where it is used: every `nemodiff` command loads this
    from transformers import PreTrainedTokenizerFast


def init_weights(model: NLDModel) -> None:
    """N(0, 0.02) everywhere, residual output projections scaled down by depth (GPT-2 style)."""
    depth_scale = 1 / math.sqrt(2 * model.config.num_hidden_layers)
    for name, p in model.named_parameters():
        if p.dim() < 2:
            continue
        std = 0.02 * (depth_scale if name.endswith(("o_proj.weight", "down_proj.weight")) else 1)
        torch.nn.init.normal_(p, std=std)


def add_dropout(model: NLDModel, p: float) -> None:
    """Drop each attention and MLP output with probability p while the model is in train mode.

    NLD's architecture has no dropout and inference never runs this: it is a regulariser for
    many epochs on a small corpus, which the demo model memorises (docs/MODEL_CARD.md). Hooks keep
    the model file as it is."""
    if p <= 0:
        return

    def drop(module: torch.nn.Module, _args, output: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.dropout(output, p, module.training)

    for layer in model.encoder.layers:
        layer.self_attn.register_forward_hook(drop)
        layer.mlp.register_forward_hook(drop)


def _tokenizer(out_dir: Path, texts: list[str], vocab_size: int, resume: bool) -> PreTrainedTokenizerFast:
    """The run's tokenizer: trained on the training texts for a new run, reloaded on resume."""
    from transformers import AutoTokenizer

    path = out_dir / "tokenizer"
    if not resume:
        tmp = fresh_dir(out_dir / "tokenizer.tmp")
        build_tokenizer(texts, vocab_size).save_pretrained(tmp)
        replace_dir(tmp, path)
    return AutoTokenizer.from_pretrained(path)


class _StopOnSignal:
    """While active, SIGINT/SIGTERM end the run after the current step (with a checkpoint)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopOnSignal":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True


class _Window:
    """Mean losses and throughput (clean tokens per second of step time) since the last log line."""

    def __init__(self) -> None:
        self.loss = self.ar = self.diff = self.seconds = 0.0
        self.steps = self.tokens = 0

    def add(self, losses: Losses, tokens: int, seconds: float) -> None:
        self.loss += losses.total.item()
        self.ar += losses.ar.item()
        self.diff += losses.diff.item()
        self.steps += 1
        self.tokens += tokens
        self.seconds += seconds

    def summary(self) -> dict[str, float]:
        n = self.steps
        return {
            "loss": round(self.loss / n, 4),
            "ar": round(self.ar / n, 4),
            "diff": round(self.diff / n, 4),
            "tokens_per_s": round(self.tokens / self.seconds, 1),
        }


@torch.no_grad()
def evaluate(model: NLDModel, batches: torch.Tensor, s: Settings, device: torch.device) -> dict[str, float]:
    """Held-out AR and diffusion loss with a fixed noise draw (block 32), comparable across steps."""
    model.eval()
    gen = torch.Generator().manual_seed(1234)
    ar = diff = 0.0
    for x0 in batches.split(s.batch_size):
        with mixed_precision(device):
            losses = joint_loss(model, x0.to(device), 32, gen, s.alpha, s.eps)
        ar, diff = ar + losses.ar.item(), diff + losses.diff.item()
    model.train()
    n = math.ceil(len(batches) / s.batch_size)
    return {"eval_ar": ar / n, "eval_diff": diff / n}


def _corpus(
    texts: tuple[list[str], list[str]] | None, stdlib: str | Path | None, saved: dict[str, Any], out: Path
) -> tuple[list[str], list[str], dict[str, Any]]:
    """Training and held-out texts, and what identifies the corpus in a checkpoint. A resumed run
    reads the library it was started on (if still there) and refuses another: its data position
    counts files of the first one."""
    root = None
    if texts is None:
        if stdlib is None and saved.get("root") and Path(saved["root"]).is_dir():
            stdlib = saved["root"]
        root = corpus.stdlib_root(stdlib)
        corpus.require_complete(root)
        texts = ([t for _, t in corpus.train_files(root)], [t for _, t in corpus.holdout_files(root)])
    train_texts, holdout_texts = texts
    fingerprint = [len(train_texts), sum(map(len, train_texts))]  # files, characters
    if saved.get("fingerprint") not in (None, fingerprint):
        files, chars = saved["fingerprint"]
        raise NemodiffError(
            f"{out} was trained on another corpus ({files} files, {chars} characters; this one "
            f"has {fingerprint[0]}, {fingerprint[1]}): resume it with the same --stdlib"
        )
    return (
        train_texts,
        holdout_texts,
        {"root": str(root) if root is not None else None, "fingerprint": fingerprint},
    )


def train(
    out_dir: str | Path,
    minutes: float | None = None,
    resume: bool = False,
    seed: int = 0,
    max_steps: int | None = None,
    checkpoint_minutes: float = 10.0,
    settings: Settings | None = None,
    texts: tuple[list[str], list[str]] | None = None,
    init_from: str | Path | None = None,
    cooldown_steps: int | None = None,
    stdlib: str | Path | None = None,
) -> Path:
    """Train until `minutes` pass or `max_steps` is reached; returns the export directory.

    A checkpoint (and export) is written every `checkpoint_minutes` and at the end. `init_from`
    starts a new run from an exported model (weights, tokenizer, step count and log; fresh
    optimizer state): how training continues in a later session when only the shipped demo
    model survived, not the run directory. `cooldown_steps` anneals the learning rate linearly
    to zero over that many steps from now and then stops, so the export is a finished model (a
    resumed run continues an unfinished cooldown; resuming after one warms back up, WSD-style).
    `texts` (train, held out) replaces the stdlib corpus (tests); `stdlib` names the standard library
    to read instead of the running interpreter's; `settings` applies to a new run. A resumed run
    reads the library it was started on (when that directory is still there) and refuses another
    corpus: its data position counts files of the first one.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "training_log.jsonl"
    found = checkpoint.find(out)
    if resume and found is None:
        raise FileNotFoundError(f"no checkpoint to resume in {out}")
    if not resume and found is not None:
        raise FileExistsError(f"{out} already holds a run: resume it or choose another directory")
    state, s = checkpoint.read(found) if resume else (None, settings or Settings())
    if state is not None:
        seed = state["seed"]
    train_texts, holdout_texts, corpus_id = _corpus(
        texts, stdlib, state.get("corpus", {}) if state else {}, out
    )

    if init_from is not None and not resume:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(init_from).save_pretrained(out / "tokenizer")
    tokenizer = _tokenizer(out, train_texts, s.vocab_size, resume or init_from is not None)
    encoder = text_encoder(tokenizer)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    model = NLDModel(model_config(s))
    init_weights(model)
    add_dropout(model, s.dropout)
    model.to(device)
    optimizer = make_optimizer(model, s)
    stream = TrainStream(train_texts, encoder, s.seq_len, seed, s.fim_rate, s.rename_rate)
    noise = torch.Generator().manual_seed(seed)
    if state is not None:
        progress = checkpoint.restore(state, model, optimizer, stream, noise)
        checkpoint.truncate_log(log_path, progress.step)
    elif init_from is not None:
        progress = checkpoint.warm_start(model, Path(init_from), log_path)
    else:
        progress = Progress()
        log_path.unlink(missing_ok=True)
    eval_batches = eval_sequences(holdout_texts, encoder, s.seq_len, s.eval_sequences)
    if cooldown_steps:
        progress.cooldown = (progress.step, cooldown_steps)
    if progress.cooldown is not None:
        max_steps = min(max_steps or sum(progress.cooldown), sum(progress.cooldown))

    def save(batches: Prefetcher, bar: tqdm) -> None:
        """A checkpoint, its held-out losses in the log, and a fresh export."""
        checkpoint.save(out, model, optimizer, batches.state, noise, progress, seed, s, corpus_id)
        epochs = batches.state["epoch"] + batches.state["cursor"] / len(
            train_texts
        )  # since this data stream began
        record = {
            "step": progress.step,
            "tokens": progress.tokens,
            "wall_s": round(progress.train_seconds, 1),
            "epochs": round(epochs, 3),
            **evaluate(model, eval_batches, s, device),
        }
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        export(model, tokenizer, out / "export", log_path)
        bar.write(
            f"checkpoint at step {progress.step}: held-out AR {record['eval_ar']:.3f}, "
            f"diffusion {record['eval_diff']:.3f}"
        )

    n_params = sum(p.numel() for p in model.parameters())
    bar = tqdm(
        initial=progress.step,
        total=max_steps,
        unit="step",
        mininterval=5,
        dynamic_ncols=True,
        desc=f"{n_params / 1e6:.1f}M params",
    )
    start = last_save = time.monotonic()
    window = _Window()
    model.train()
    with Prefetcher(stream, s.batch_size) as batches, _StopOnSignal() as stop:
        while not stop.requested and (max_steps is None or progress.step < max_steps):
            if minutes is not None and time.monotonic() - start >= minutes * 60:
                break
            t0 = time.monotonic()
            block = s.blocks[int(torch.randint(len(s.blocks), (1,), generator=noise))]
            x0 = batches.next_batch().to(device)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(progress.step, s, progress.cooldown, progress.restart)
            with mixed_precision(device):
                losses = joint_loss(model, x0, block, noise, s.alpha, s.eps, s.ordered_masking)
            optimizer.zero_grad(set_to_none=True)
            losses.total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
            optimizer.step()
            progress.step += 1
            progress.tokens += x0.numel()
            seconds = time.monotonic() - t0
            progress.train_seconds += seconds
            window.add(losses, x0.numel(), seconds)
            if progress.step % s.log_every == 0:
                record = {
                    "step": progress.step,
                    "tokens": progress.tokens,
                    **window.summary(),
                    "lr": lr_at(progress.step - 1, s, progress.cooldown, progress.restart),
                    "wall_s": round(progress.train_seconds, 1),
                }
                with log_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                bar.set_postfix(
                    loss=record["loss"], ar=record["ar"], diff=record["diff"], tok_s=record["tokens_per_s"]
                )
                window = _Window()
            bar.update(1)
            if time.monotonic() - last_save >= checkpoint_minutes * 60:
                save(batches, bar)
                last_save = time.monotonic()
        save(batches, bar)
    bar.close()
    return out / "export"
