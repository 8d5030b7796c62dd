"""Retrain only the head's `<|mask|>` row of an exported model, everything else frozen.

Inference thresholds the full-vocabulary softmax, mask token included (NVIDIA's rule), so a model
must learn to put almost no probability on `<|mask|>`. A model trained while the objective gave the
mask a -inf logit never trained that row (the demo model put up to 0.59 on it at masked slots).
The mask token is never a target, so the joint loss depends on that row w only through each
scored position's softmax denominator:

    CE_i(w) = const_i + softplus(h_i . w - log S_i),   S_i = sum of exp(logit) over the other tokens

One no-grad pass of the frozen model over training batches caches (h_i, log S_i, the position's
weight in L_AR + alpha L_diff), and the row is fitted to that exact objective in seconds. Nothing
else changes and the mask id is never chosen, so AR and self-speculation outputs stay the same.

`python -m engine.training.mask_row --model DIR` rewrites DIR/model.safetensors (bf16, as exported)
and prints P(<|mask|>) at masked slots of held-out windows before and after.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.evaluation import corpus
from engine.model.network import NLDModel
from engine.prompts.bpe import text_encoder
from engine.training.data import TrainStream, eval_sequences
from engine.training.export import load_export, save_bf16
from engine.training.objective import add_noise, joint_forward, training_mask
from engine.training.settings import Settings
from kernels.ops import Pattern


@dataclass
class MaskRowSettings:
    batches: int = 48  # training batches of the trainer's shape (8 x 256) the frozen model reads once
    steps: int = 400  # full-batch AdamW steps on the cached positions
    lr: float = 0.05
    weight_decay: float = 0.1  # the trainer's (decoupled): the loss alone would push the row ever lower
    seed: int = 0


@dataclass
class Scored:
    """Every scored position of some batches under the frozen model."""

    hidden: torch.Tensor  # [N, H] final hidden states
    log_rest: torch.Tensor  # [N] log-sum-exp of the logits of every token but the mask
    weight: torch.Tensor  # [N] the position's weight in the joint loss, averaged over the batches


def _rest(model: NLDModel, hidden: torch.Tensor) -> torch.Tensor:
    logits = model.logits(hidden)
    logits[:, model.config.mask_token_id] = float("-inf")
    return logits.logsumexp(-1)


@torch.no_grad()
def collect(
    model: NLDModel, batches: Iterable[tuple[torch.Tensor, int]], s: Settings, gen: torch.Generator
) -> Scored:
    """Scored positions of both losses for (clean sequences [B, T], block size) pairs, noised as in training."""
    hidden, log_rest, weight = [], [], []
    n = 0
    for x0, block in batches:
        n += 1
        t = x0.shape[1]
        h, noised, scored = joint_forward(model, x0, block, gen, s.eps, s.ordered_masking)
        ar_h = h[:, t:-1][scored]
        diff_h = h[:, :t][noised.masked]
        diff_w = s.alpha / noised.prob[noised.masked] / (x0 != model.config.pad_token_id).sum()
        hidden += [ar_h, diff_h]
        log_rest += [_rest(model, ar_h), _rest(model, diff_h)]
        weight += [torch.full((len(ar_h),), 1 / len(ar_h)), diff_w]
    return Scored(torch.cat(hidden), torch.cat(log_rest), torch.cat(weight) / n)


def mask_loss(row: torch.Tensor, scored: Scored) -> torch.Tensor:
    """The part of the joint loss that depends on the mask row (zero for a row that is never probable)."""
    return (scored.weight * F.softplus(scored.hidden @ row - scored.log_rest)).sum()


def fit_row(row: torch.Tensor, scored: Scored, s: MaskRowSettings) -> torch.Tensor:
    """The mask row after `s.steps` full-batch AdamW steps on the cached objective."""
    row = row.detach().clone().requires_grad_(True)
    opt = torch.optim.AdamW([row], lr=s.lr, betas=(0.9, 0.95), weight_decay=s.weight_decay)
    for _ in range(s.steps):
        opt.zero_grad()
        mask_loss(row, scored).backward()
        opt.step()
    return row.detach()


@torch.no_grad()
def masked_slots(
    model: NLDModel, windows: torch.Tensor, block: int, ordered: float, seed: int = 1234
) -> Scored:
    """Every masked slot of noised `windows` [N, T] (unit weights): what P(<|mask|>) is measured on."""
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    t = windows.shape[1]
    hidden = []
    for x0 in windows.split(8):
        noised = add_noise(x0, block, cfg.mask_token_id, cfg.pad_token_id, gen, 1e-3, ordered)
        h = model(noised.tokens, torch.arange(t), pattern=Pattern.MASK, mask=training_mask(t, block)[:t, :t])
        hidden.append(h[noised.masked])
    hidden = torch.cat(hidden)
    return Scored(hidden, _rest(model, hidden), torch.ones(len(hidden)))


def mask_probability(row: torch.Tensor, slots: Scored) -> torch.Tensor:
    """P(<|mask|>) under the full-vocabulary softmax at each slot: sigmoid(mask logit - log S)."""
    return torch.sigmoid(slots.hidden @ row - slots.log_rest)


def held_out_slots(model: NLDModel, windows: torch.Tensor) -> dict[str, Scored]:
    """Masked slots per block size and masking (uniform, or from a cut on, as drafts and late steps see)."""
    return {
        f"block {block}, {name}": masked_slots(model, windows, block, ordered)
        for block in (8, 32)
        for name, ordered in (("uniform", 0.0), ("cut", 1.0))
    }


def report(row: torch.Tensor, slots: dict[str, Scored]) -> dict[str, dict[str, float]]:
    """Max and mean P(<|mask|>) at the held-out masked slots."""
    out = {}
    for name, scored in slots.items():
        p = mask_probability(row, scored)
        out[name] = {
            "slots": len(p),
            "max": float(f"{p.max().item():.3g}"),
            "mean": float(f"{p.mean().item():.3g}"),
        }
    return out


def retrain_mask_row(
    model_dir: str | Path,
    s: MaskRowSettings = MaskRowSettings(),
    texts: tuple[list[str], list[str]] | None = None,
) -> dict:
    """Fit the mask row of the exported model in `model_dir` and rewrite its weights; returns the numbers."""
    from transformers import PreTrainedTokenizerFast

    model_dir = Path(model_dir)
    torch.manual_seed(s.seed)
    model = load_export(model_dir).eval()
    ts = Settings()
    if texts is None:
        texts = ([t for _, t in corpus.train_files()], [t for _, t in corpus.holdout_files()])
    encoder = text_encoder(PreTrainedTokenizerFast.from_pretrained(model_dir))
    held_out = eval_sequences(texts[1], encoder, ts.seq_len, 32)
    stream = TrainStream(texts[0], encoder, ts.seq_len, s.seed, ts.fim_rate)
    gen = torch.Generator().manual_seed(s.seed)
    batches = (
        (stream.next_batch(ts.batch_size), ts.blocks[int(torch.randint(len(ts.blocks), (1,), generator=gen))])
        for _ in range(s.batches)
    )  # lazily: each block size is drawn just before its batch's noise
    scored = collect(model, batches, ts, gen)
    weight = model.diffusion_head.weight
    mask_id = model.config.mask_token_id
    slots = held_out_slots(model, held_out)
    old = weight[mask_id].detach().clone()
    row = fit_row(old, scored, s)
    with torch.no_grad():
        weight[mask_id] = row
    numbers = {
        name: {"loss": mask_loss(r, scored).item(), "held_out": report(r, slots)}
        for name, r in (("before", old), ("after", row))
    }
    save_bf16(model.state_dict(), model_dir / "model.safetensors")
    return {"positions": len(scored.weight), **numbers}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m engine.training.mask_row",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="an exported model directory (e.g. engine/demo_model)")
    parser.add_argument("--batches", type=int, default=MaskRowSettings.batches)
    parser.add_argument("--steps", type=int, default=MaskRowSettings.steps)
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (Path(args.model) / "model.safetensors").is_file():
        raise SystemExit(f"error: {args.model} has no model.safetensors")
    print(
        json.dumps(
            retrain_mask_row(args.model, MaskRowSettings(batches=args.batches, steps=args.steps)), indent=2
        )
    )


if __name__ == "__main__":
    main()
