"""Train the bundled demo model on the standard library; resumable across sessions of any length.

`train(out_dir, minutes)` runs for a time budget and can be resumed exactly (`resume=True`): the
checkpoint holds weights, optimizer moments, the step, the data stream's position and both
random generators. Every checkpoint also refreshes `export/`, the model in NLD format (config.json,
bf16 model.safetensors, tokenizer), so the current model can be tried at any time.

The learning rate warms up linearly, then decays as 1/sqrt(step): no total length is needed,
which suits a run continued over sessions of unknown number.

Layout of `out_dir`: tokenizer/, checkpoint/ (state.pt), export/, training_log.jsonl.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from engine.errors import NemodiffError
from engine.evaluation import corpus
from engine.loading.checkpoint import resolve_dtype
from engine.model.config import ModelConfig
from engine.model.network import NLDModel
from engine.prompts.bpe import BOS, EOS, MASK, PAD, build_tokenizer, text_encoder
from engine.training.data import TrainStream, eval_sequences
from engine.training.objective import Losses, joint_loss
from engine.training.prefetch import Prefetcher

if TYPE_CHECKING:  # transformers is imported where it is used: every `nemodiff` command loads this
    from transformers import PreTrainedTokenizerFast


@dataclass
class Settings:
    """Everything that shapes a run; stored in the checkpoint, which wins on resume."""

    # Model: 8.7M parameters (4.2M of them embedding + head), 17.4 MB in bf16, sized for hours of CPU.
    vocab_size: int = 8192  # 3.35 characters per token on the stdlib; embedding + head stay about half the model
    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 6
    num_attention_heads: int = 8
    num_key_value_heads: int = 2
    head_dim: int = 32
    rope_theta: float = 1e4  # NLD's YaRN otherwise; the training contexts are short
    # Data and objective.
    seq_len: int = 256
    batch_size: int = 8
    blocks: tuple[int, ...] = (8, 16, 32)  # drawn per step; inference uses 8 to 32
    fim_rate: float = 0.5
    alpha: float = 0.3
    eps: float = 1e-3
    ordered_masking: float = 0.0  # share of blocks masked position-dependently (objective.py)
    rename_rate: float = 0.0  # share of file reads renamed (renaming.py); the shipped model's first 22,608 steps had none
    # Optimisation.
    lr: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    dropout: float = 0.0  # residual dropout while training (`add_dropout`); the shipped model had none
    # Bookkeeping.
    log_every: int = 10
    eval_sequences: int = 32


def model_config(s: Settings) -> ModelConfig:
    """The exported config: NLD's own fields and YaRN settings at demo size, the tokenizer's ids, and
    the context it was trained on as `max_position_embeddings` (the engine fits prompts to it)."""
    return ModelConfig(
        max_position_embeddings=s.seq_len,
        vocab_size=s.vocab_size, hidden_size=s.hidden_size, intermediate_size=s.intermediate_size,
        num_hidden_layers=s.num_hidden_layers, num_attention_heads=s.num_attention_heads,
        num_key_value_heads=s.num_key_value_heads, head_dim=s.head_dim,
        rope_parameters=dict(ModelConfig().rope_parameters, rope_theta=s.rope_theta),
        mask_token_id=MASK, eos_token_id=EOS, bos_token_id=BOS, pad_token_id=PAD,
        block_size=8, threshold=0.15,  # chosen by the sweeps in docs/MODEL_CARD.md
        fim_order="spm",  # measured far better than PSM for the first token (docs/MODEL_CARD.md)
    )


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
    many epochs on a small corpus, which the demo model memorises (docs/MODEL_CARD.md; at 2.5 M
    parameters, 0.1 gained only 0.016 nats/token on held-out code). Hooks keep the model file
    as it is."""
    if p <= 0:
        return

    def drop(module: torch.nn.Module, _args, output: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.dropout(output, p, module.training)

    for layer in model.encoder.layers:
        layer.self_attn.register_forward_hook(drop)
        layer.mlp.register_forward_hook(drop)


def lr_at(step: int, s: Settings, cooldown: tuple[int, int] | None = None, restart: int = 0) -> float:
    """Linear warmup, then inverse-square-root decay (continuous at the end of warmup); during a
    cooldown `(first step, length)` the rate also falls linearly to zero. A run started from an
    export at step `restart` has fresh optimizer moments, so it warms up again from there."""
    n = step + 1
    lr = s.lr * min(1.0, (n - restart) / s.warmup_steps) * min(1.0, math.sqrt(s.warmup_steps / n))
    if cooldown is not None:
        lr *= max(0.0, 1 - (step - cooldown[0]) / cooldown[1])
    return lr


def make_optimizer(model: NLDModel, s: Settings) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s.lr, betas=(0.9, 0.95), eps=1e-8)


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
    save_file({k: v.detach().to(torch.bfloat16).contiguous().cpu() for k, v in tensors.items()}, file,
              metadata={"format": "pt"})
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


def _tokenizer(out_dir: Path, texts: list[str], vocab_size: int, resume: bool) -> PreTrainedTokenizerFast:
    """The run's tokenizer: trained on the training texts for a new run, reloaded on resume."""
    from transformers import AutoTokenizer

    path = out_dir / "tokenizer"
    if not resume:
        tmp = fresh_dir(out_dir / "tokenizer.tmp")
        build_tokenizer(texts, vocab_size).save_pretrained(tmp)
        replace_dir(tmp, path)
    return AutoTokenizer.from_pretrained(path)


def export_weights(src: Path) -> dict[str, torch.Tensor]:
    """An exported model's weights in fp32 (what training continues from)."""
    return {k: v.float() for k, v in load_file(src / "model.safetensors").items()}


def load_export(src: Path) -> NLDModel:
    """An exported model (config.json + model.safetensors) in fp32, for further training."""
    model = NLDModel(ModelConfig.from_dict(json.loads((src / "config.json").read_text())))
    model.load_state_dict(export_weights(src))
    return model


def _warm_start(model: NLDModel, src: Path, log_path: Path) -> tuple[int, int, float]:
    """Load an export's weights into `model` and continue its log; returns (step, tokens, seconds)."""
    model.load_state_dict(export_weights(src))
    src_log = src / "training_log.jsonl"
    if not src_log.exists():
        log_path.unlink(missing_ok=True)
        return 0, 0, 0.0
    shutil.copyfile(src_log, log_path)
    last = json.loads(src_log.read_text().splitlines()[-1])
    return last["step"], last["tokens"], last["wall_s"]


def _checkpoint_path(out_dir: Path) -> Path | None:
    for name in ("checkpoint", "checkpoint.old"):
        if (out_dir / name / "state.pt").exists():
            return out_dir / name / "state.pt"
    return None


def _truncate_log(log: Path, step: int) -> None:
    """Drop log records written after the checkpoint being resumed (they will be redone)."""
    if log.exists():
        keep = [line for line in log.read_text().splitlines() if json.loads(line)["step"] <= step]
        log.write_text("".join(line + "\n" for line in keep))


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
        return {"loss": round(self.loss / n, 4), "ar": round(self.ar / n, 4), "diff": round(self.diff / n, 4),
                "tokens_per_s": round(self.tokens / self.seconds, 1)}


def mixed_precision(device: torch.device) -> torch.autocast:
    """bf16 autocast where bf16 is native (CUDA, AVX512-BF16/AMX CPUs), else plain fp32: an AVX2 CPU
    emulates bf16, and a demo-model step took 56 s there against 2.1 s in fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolve_dtype(None, device) == torch.bfloat16)


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
    ckpt_path = _checkpoint_path(out)
    if resume and ckpt_path is None:
        raise FileNotFoundError(f"no checkpoint to resume in {out}")
    if not resume and ckpt_path is not None:
        raise FileExistsError(f"{out} already holds a run: resume it or choose another directory")
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True) if resume else None
    if state is not None:
        s = Settings(**{**state["settings"], "blocks": tuple(state["settings"]["blocks"])})
        seed = state["seed"]
    else:
        s = settings or Settings()
    saved = state.get("corpus", {}) if state is not None else {}
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
        raise NemodiffError(f"{out} was trained on another corpus ({files} files, {chars} characters; this one "
                            f"has {fingerprint[0]}, {fingerprint[1]}): resume it with the same --stdlib")

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
    step, tokens, train_s, restart = 0, 0, 0.0, 0
    cooldown: tuple[int, int] | None = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        stream.load_state_dict(state["data"])
        noise.set_state(state["noise_rng"])
        step, tokens, train_s, restart = state["step"], state["tokens"], state["train_seconds"], state.get("restart", 0)
        if state.get("cooldown") and step < sum(state["cooldown"]):
            cooldown = tuple(state["cooldown"])
        _truncate_log(log_path, step)
    elif init_from is not None:
        step, tokens, train_s = _warm_start(model, Path(init_from), log_path)
        restart = step
    else:
        log_path.unlink(missing_ok=True)
    eval_batches = eval_sequences(holdout_texts, encoder, s.seq_len, s.eval_sequences)
    if cooldown_steps:
        cooldown = (step, cooldown_steps)
    if cooldown is not None:
        max_steps = min(max_steps or sum(cooldown), sum(cooldown))

    def save() -> None:
        tmp = fresh_dir(out / "checkpoint.tmp")
        torch.save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "data": batches.state,
            "noise_rng": noise.get_state(), "step": step, "tokens": tokens, "train_seconds": train_s,
            "seed": seed, "settings": dataclasses.asdict(s), "cooldown": cooldown, "restart": restart,
            "corpus": {"root": str(root) if root is not None else None, "fingerprint": fingerprint},
        }, tmp / "state.pt")
        replace_dir(tmp, out / "checkpoint")
        epochs = batches.state["epoch"] + batches.state["cursor"] / len(train_texts)  # since this data stream began
        record = {"step": step, "tokens": tokens, "wall_s": round(train_s, 1), "epochs": round(epochs, 3),
                  **evaluate(model, eval_batches, s, device)}
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        export(model, tokenizer, out / "export", log_path)
        bar.write(f"checkpoint at step {step}: held-out AR {record['eval_ar']:.3f}, diffusion {record['eval_diff']:.3f}")

    n_params = sum(p.numel() for p in model.parameters())
    bar = tqdm(initial=step, total=max_steps, unit="step", mininterval=5, dynamic_ncols=True,
               desc=f"{n_params / 1e6:.1f}M params")
    start = last_ckpt = time.monotonic()
    window = _Window()
    model.train()
    with Prefetcher(stream, s.batch_size) as batches, _StopOnSignal() as stop:
        while not stop.requested and (max_steps is None or step < max_steps):
            if minutes is not None and time.monotonic() - start >= minutes * 60:
                break
            t0 = time.monotonic()
            block = s.blocks[int(torch.randint(len(s.blocks), (1,), generator=noise))]
            x0 = batches.next_batch().to(device)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, s, cooldown, restart)
            with mixed_precision(device):
                losses = joint_loss(model, x0, block, noise, s.alpha, s.eps, s.ordered_masking)
            optimizer.zero_grad(set_to_none=True)
            losses.total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
            optimizer.step()
            step += 1
            tokens += x0.numel()
            seconds = time.monotonic() - t0
            train_s += seconds
            window.add(losses, x0.numel(), seconds)
            if step % s.log_every == 0:
                record = {"step": step, "tokens": tokens, **window.summary(), "lr": lr_at(step - 1, s, cooldown, restart),
                          "wall_s": round(train_s, 1)}
                with log_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                bar.set_postfix(loss=record["loss"], ar=record["ar"], diff=record["diff"], tok_s=record["tokens_per_s"])
                window = _Window()
            bar.update(1)
            if time.monotonic() - last_ckpt >= checkpoint_minutes * 60:
                save()
                last_ckpt = time.monotonic()
        save()
    bar.close()
    return out / "export"
