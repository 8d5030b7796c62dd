"""Train a model's draft adapter (`linear_spec_lora/`) by self-distillation.

Linear self-speculation keeps a drafted token only when it equals the AR model's own argmax, so
the draft should predict the model, not the data. NLD ships such an adapter (a LoRA on o_proj,
used only in draft passes); this trains one for our own checkpoints with the base weights frozen,
so AR output, and hence the lossless guarantee, is untouched.

The targets are the AR model's own greedy continuations (rollouts), not the data: what the
verifier will actually emit after a block's first token. B - 1 no-grad passes roll out every
block of a batch at once; then one pass over `[draft | clean]` (the joint objective's layout)
trains the draft half, where each block keeps its first token and masks the rest, exactly the
draft input `[next, MASK x (B-1)]` reading the cache of earlier blocks, with the adapter on.
(Targets from the AR distribution given the true text, one pass instead of B - 1, did not raise
acceptance at all: the draft cannot see that text, so they only restate the data.)

`nemodiff train-draft --model DIR --minutes M` (or `python -m engine.training.draft_lora`) writes
`DIR/linear_spec_lora/` (PEFT format) every few minutes and at the end; `--resume` continues it.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tqdm import tqdm

from engine.errors import NemodiffError
from engine.evaluation import corpus
from engine.loading.checkpoint import LORA_DIR, lora_name
from engine.model.network import LoRA, NLDModel
from engine.prompts.bpe import text_encoder
from engine.training.data import TrainStream
from engine.training.objective import training_mask
from engine.training.export import fresh_dir, load_export, replace_dir, save_bf16
from engine.training.schedule import mixed_precision
from kernels import ops
from kernels.ops import Pattern


@dataclass
class DraftSettings:
    rank: int = 32
    alpha: float = 64.0
    lr: float = 2e-3
    warmup_steps: int = 50
    seq_len: int = 256
    batch_size: int = 8
    blocks: tuple[int, ...] = (8,)  # rollouts cost B - 1 passes; the demo model drafts blocks of 8
    fim_rate: float = 0.5
    # "prefix": weight slot j's cross-entropy by the draft's probability of getting slots 1..j-1
    # right (detached), the chance that slot j is ever looked at; "uniform": every slot alike.
    weighting: str = "prefix"
    cooldown: float = 0.2  # with a step budget, the learning rate falls linearly to 0 over its last 20 %


def attach(model: NLDModel, s: DraftSettings) -> list[torch.nn.Parameter]:
    """A fresh adapter on every o_proj (B = 0: it starts as a no-op); returns its parameters."""
    params = []
    for layer in model.encoder.layers:
        o = layer.self_attn.o_proj
        lora = LoRA(o.in_features, o.out_features, s.rank, s.alpha / s.rank).to(o.weight.device)
        torch.nn.init.zeros_(lora.lora_B.weight)
        layer.self_attn.o_lora = lora
        params += list(lora.parameters())
    return params


def draft_input(x0: torch.Tensor, block: int, mask_id: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, masked): every block of x0 [B, T] as `[first token, MASK x (block - 1)]`."""
    masked = (torch.arange(x0.shape[1], device=x0.device) % block != 0)[None, :] & (x0 != pad_id)
    return torch.where(masked, mask_id, x0), masked


def rollout_mask(seq_len: int, block: int) -> torch.Tensor:
    """The training mask with each block of the first half causal instead of bidirectional."""
    mask = training_mask(seq_len, block)
    mask[:seq_len, :seq_len] &= torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
    return mask


@torch.no_grad()
def greedy_rollouts(model: NLDModel, x0: torch.Tensor, block: int) -> torch.Tensor:
    """[B, T]: every block's first token of x0 followed by the AR model's greedy continuation of it,
    for all blocks at once. The rollout half reads the clean tokens of earlier blocks (the cache a
    draft sees) and its own block causally; pass k fills slot k of every block."""
    t = x0.shape[1]
    positions = torch.arange(t, device=x0.device).repeat(2)
    mask = rollout_mask(t, block).to(x0.device)
    slot = torch.arange(t, device=x0.device) % block
    roll = x0.clone()
    for k in range(1, block):
        hidden = model(torch.cat([roll, x0], dim=1), positions, pattern=Pattern.MASK, mask=mask)
        at = (slot == k).nonzero(as_tuple=True)[0]
        roll[:, at] = ops.argmax_confidence(model.logits(hidden[:, at - 1]), model.config.mask_token_id)[0]
    return roll


def slot_weights(nll: torch.Tensor, block: int, weighting: str) -> torch.Tensor:
    """Per-slot loss weights [B, T] from the draft's per-slot NLL [B, T] (0 where not masked).

    A draft is accepted up to its first wrong slot, so slot j only counts when slots 1..j-1 were
    right: "prefix" weights it by the (detached) probability of that, the product of the draft's
    probabilities for the earlier slots' targets."""
    if weighting == "uniform":
        return torch.ones_like(nll)
    p = torch.exp(-nll.detach()).view(nll.shape[0], -1, block)
    earlier = torch.cat([torch.ones_like(p[..., :1]), p[..., :-1]], dim=-1)
    return torch.cumprod(earlier, dim=-1).view_as(nll)


def distill_loss(model: NLDModel, x0: torch.Tensor, block: int, weighting: str = "prefix") -> torch.Tensor:
    """Weighted cross-entropy of the draft (adapter on) against the AR model's greedy rollouts, on
    the masked slots of a batch x0 [B, T]: a drafted token is kept exactly when it equals these."""
    cfg = model.config
    t = x0.shape[1]
    targets = greedy_rollouts(model, x0, block)
    tokens, masked = draft_input(x0, block, cfg.mask_token_id, cfg.pad_token_id)
    positions = torch.arange(t, device=x0.device).repeat(2)
    adapter_on = torch.arange(2 * t, device=x0.device) < t  # the draft half only
    hidden = model(
        torch.cat([tokens, x0], dim=1),
        positions,
        pattern=Pattern.MASK,
        mask=training_mask(t, block).to(x0.device),
        lora=adapter_on,
    )
    logits = model.logits(hidden[:, :t])  # fp32 already
    nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view_as(targets) * masked
    w = slot_weights(nll, block, weighting) * masked
    return (nll * w).sum() / w.sum()


def save_adapter(
    model: NLDModel, s: DraftSettings, out: Path, step: int, optimizer: torch.optim.Optimizer
) -> None:
    """PEFT layout: adapter_config.json + adapter_model.safetensors (+ our resume state)."""
    tmp = fresh_dir(out.with_name(out.name + ".tmp"))
    config = {
        "peft_type": "LORA",
        "r": s.rank,
        "lora_alpha": s.alpha,
        "target_modules": ["o_proj"],
        "lora_dropout": 0.0,
        "bias": "none",
        "use_rslora": False,
        "task_type": "CAUSAL_LM",
        "nemodiff": {"trained_steps": step, "method": "self-distillation, engine/training/draft_lora.py"},
    }
    (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    tensors = {}
    for i, layer in enumerate(model.encoder.layers):
        base = f"base_model.model.encoder.layers.{i}.self_attn.o_proj"
        lora = layer.self_attn.o_lora
        tensors[f"{base}.lora_A.weight"] = lora.lora_A.weight
        tensors[f"{base}.lora_B.weight"] = lora.lora_B.weight
    save_bf16(tensors, tmp / "adapter_model.safetensors")
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "fp32": {k: v for k, v in model.state_dict().items() if ".o_lora." in k},
        },
        tmp / "resume_state.pt",
    )
    replace_dir(tmp, out)


def lr_at(step: int, s: DraftSettings, max_steps: int | None, restart: int = 0) -> float:
    """Linear warm-up (again from `restart`, where optimizer moments began afresh), then constant;
    with a step budget, a linear cooldown to 0 over its last part."""
    lr = s.lr * min(1.0, (step + 1 - restart) / s.warmup_steps)
    if max_steps:
        lr *= min(1.0, (max_steps - step) / max(1.0, s.cooldown * max_steps))
    return lr


def train_adapter(
    model_dir: str | Path,
    minutes: float | None = None,
    resume: bool = False,
    seed: int = 0,
    max_steps: int | None = None,
    checkpoint_minutes: float = 5.0,
    s: DraftSettings | None = None,
    texts: list[str] | None = None,
) -> Path:
    """Distil the draft adapter of the model in `model_dir` for `minutes` or up to `max_steps` steps
    in all; returns the adapter directory."""
    s = s or DraftSettings()
    model_dir = Path(model_dir)
    out = model_dir / LORA_DIR
    if resume:  # the adapter being continued fixes its shape
        saved = json.loads((out / "adapter_config.json").read_text())
        s = replace(s, rank=saved["r"], alpha=saved["lora_alpha"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_export(model_dir).to(device).requires_grad_(False)
    params = attach(model, s)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=s.lr, betas=(0.9, 0.95), weight_decay=0.0)
    step = restart = 0
    if resume and (out / "resume_state.pt").is_file():
        state = torch.load(out / "resume_state.pt", map_location=device, weights_only=True)
        model.load_state_dict(state["fp32"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
    elif resume:  # a shipped adapter, its optimizer state removed: e.g. carried over to new base weights
        weights = load_file(out / "adapter_model.safetensors")
        unexpected = model.load_state_dict(
            {lora_name(k): v.float() for k, v in weights.items()}, strict=False
        )[1]
        if unexpected:
            raise NemodiffError(f"{out}: adapter weights this model does not have: {unexpected[0]}, ...")
        step = restart = saved.get("nemodiff", {}).get("trained_steps", 0)
    texts = texts if texts is not None else [t for _, t in corpus.train_files()]
    # Imported here, not at the top: every `nemodiff` command loads this module.
    from transformers import PreTrainedTokenizerFast

    encoder = text_encoder(PreTrainedTokenizerFast.from_pretrained(model_dir))
    stream = TrainStream(texts, encoder, s.seq_len, seed + step, s.fim_rate)
    rng = torch.Generator().manual_seed(seed + step)
    bar = tqdm(initial=step, unit="step", mininterval=5, dynamic_ncols=True, desc="draft adapter")
    start = last_save = time.monotonic()
    while (minutes is None or time.monotonic() - start < minutes * 60) and (
        max_steps is None or step < max_steps
    ):
        block = s.blocks[int(torch.randint(len(s.blocks), (1,), generator=rng))]
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, s, max_steps, restart)
        x0 = stream.next_batch(s.batch_size).to(device)
        with mixed_precision(device):
            loss = distill_loss(model, x0, block, s.weighting)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=round(loss.item(), 3), block=block, refresh=False)
        if time.monotonic() - last_save >= checkpoint_minutes * 60:
            save_adapter(model, s, out, step, optimizer)
            last_save = time.monotonic()
    save_adapter(model, s, out, step, optimizer)
    bar.close()
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="an exported model directory (e.g. engine/demo_model)")
    parser.add_argument("--minutes", type=float, help="wall-clock budget (default: no limit)")
    parser.add_argument("--steps", type=int, help="stop at this total step count")
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"continue MODEL/{LORA_DIR} (one shipped without its optimizer state "
        "warms up again: how an adapter follows new base weights)",
    )
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument(
        "--weighting",
        choices=["prefix", "uniform"],
        default=DraftSettings.weighting,
        help="per-slot loss weights (default: %(default)s, see DraftSettings)",
    )
    parser.add_argument(
        "--rank", type=int, default=DraftSettings.rank, help="LoRA rank (default: %(default)s)"
    )
    parser.add_argument("--alpha", type=float, help="LoRA alpha (default: twice the rank, a scale of 2)")


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    adapter = Path(args.model) / LORA_DIR
    if args.resume and not (adapter / "adapter_model.safetensors").is_file():
        raise NemodiffError(f"no adapter to resume in {adapter}")
    if not args.resume and adapter.exists():  # never replace a trained adapter by accident
        raise NemodiffError(f"{adapter} exists: --resume continues it; to start over, remove it first")
    if args.rank < 1:
        raise NemodiffError(f"--rank must be at least 1, got {args.rank}")
    out = train_adapter(
        args.model,
        args.minutes,
        args.resume,
        max_steps=args.steps,
        s=DraftSettings(rank=args.rank, alpha=args.alpha or 2.0 * args.rank, weighting=args.weighting),
    )
    print(f"adapter written to {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m engine.training.draft_lora",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    try:
        run(parser.parse_args(argv))
    except (NemodiffError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
