"""The joint AR + masked-diffusion objective NLD is trained with, on `[x_t | x_0]`.

One forward over the noised copy x_t followed by the clean sequence x_0, both at positions
0..T-1, trains both modes of the one network: the clean half is token-causal, so its logits[i]
predict token i+1 (AR mode); a noised token sees its own block bidirectionally plus the clean
tokens of strictly earlier blocks, exactly what block diffusion sees at inference (a cache of
committed text and a partly masked block), so its logits predict the token at its own position.

    L = L_AR + alpha * L_diff,  L_diff = sum over masked tokens of CE / p, divided by the token count

Both cross-entropies are over the full vocabulary, mask token included, as in NVIDIA's training: the
head's `<|mask|>` row is trained to stay improbable, which matters because inference thresholds the
full-vocabulary softmax (a -inf mask logit here left that row untrained; docs/MODEL_CARD.md).

Each block draws its own t ~ U(0, 1) and masks each token with p = (1 - eps) t + eps, so one
sequence mixes nearly clean and nearly masked blocks. A share of blocks (`ordered`) is masked
position-dependently instead (later tokens more often, as in Efficient-DLM), in its extreme form:
a cut k ~ U{1..B-1} and every token from k on masked, so token i is masked with probability
p_i = i / (B - 1). These are the states left-to-right decoding passes through; k = 1 is the
state every linear self-speculation draft is made from (`[next token, MASK x (B - 1)]`), which
uniform masking shows with probability only (1 - p) p^(B - 1). `<pad>` is never masked nor scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.model.network import NLDModel
from kernels.ops import Pattern


def training_mask(seq_len: int, block: int) -> torch.Tensor:
    """[2T, 2T] bool, True where query (row) may attend key (column); rows/columns 0..T-1 are x_t."""
    if seq_len % block:
        raise ValueError(f"sequence length {seq_len} is not a multiple of the block size {block}")
    idx = torch.arange(seq_len)
    blk = idx // block
    noised_to_noised = blk[:, None] == blk[None, :]
    noised_to_clean = blk[None, :] < blk[:, None]
    clean_to_clean = idx[None, :] <= idx[:, None]
    clean_to_noised = torch.zeros(seq_len, seq_len, dtype=torch.bool)
    return torch.cat(
        [
            torch.cat([noised_to_noised, noised_to_clean], dim=1),
            torch.cat([clean_to_noised, clean_to_clean], dim=1),
        ]
    )


@dataclass
class Noised:
    tokens: torch.Tensor  # [B, T] x_t
    masked: torch.Tensor  # [B, T] bool
    prob: torch.Tensor  # [B, T] the mask probability each token was drawn with


def add_noise(
    x0: torch.Tensor,
    block: int,
    mask_id: int,
    pad_id: int,
    gen: torch.Generator,
    eps: float,
    ordered: float = 0.0,
) -> Noised:
    """Mask each token of x0 [B, T] with its block's probability p = (1 - eps) t + eps, t ~ U(0, 1), or
    in a share `ordered` of the blocks from a random cut on (module docstring)."""
    b, t = x0.shape
    n = t // block
    p = ((1 - eps) * torch.rand(b, n, generator=gen) + eps).repeat_interleave(block, dim=1)
    masked = torch.rand(b, t, generator=gen) < p
    if ordered:
        pos = torch.arange(block)
        cut = torch.randint(1, block, (b, n, 1), generator=gen)
        picked = (torch.rand(b, n, generator=gen) < ordered).repeat_interleave(block, dim=1)
        masked = torch.where(picked, (pos >= cut).reshape(b, t), masked)
        p = torch.where(picked, (pos / (block - 1)).repeat(n), p)
    masked = masked.to(x0.device) & (x0 != pad_id)
    return Noised(torch.where(masked, mask_id, x0), masked, p.to(x0.device))


@dataclass
class Losses:
    total: torch.Tensor
    ar: torch.Tensor
    diff: torch.Tensor


def joint_forward(
    model: NLDModel,
    x0: torch.Tensor,
    block: int,
    gen: torch.Generator,
    eps: float = 1e-3,
    ordered: float = 0.0,
) -> tuple[torch.Tensor, Noised, torch.Tensor]:
    """One pass over `[x_t | x_0]`: final hidden states [B, 2T, H], the noise drawn, and the AR targets'
    mask [B, T-1] (clean positions whose next token is scored)."""
    cfg = model.config
    _, t = x0.shape
    noised = add_noise(x0, block, cfg.mask_token_id, cfg.pad_token_id, gen, eps, ordered)
    positions = torch.arange(t, device=x0.device).repeat(2)
    mask = training_mask(t, block).to(x0.device)
    hidden = model(torch.cat([noised.tokens, x0], dim=1), positions, pattern=Pattern.MASK, mask=mask)
    targets = x0[:, 1:]
    return hidden, noised, (targets != cfg.pad_token_id) & (targets != cfg.mask_token_id)


def joint_loss(
    model: NLDModel,
    x0: torch.Tensor,
    block: int,
    gen: torch.Generator,
    alpha: float = 0.3,
    eps: float = 1e-3,
    ordered: float = 0.0,
) -> Losses:
    """The objective on a batch of clean sequences x0 [B, T]; the noise is drawn from `gen`."""
    t = x0.shape[1]
    hidden, noised, scored = joint_forward(model, x0, block, gen, eps, ordered)
    ar = F.cross_entropy(model.logits(hidden[:, t:-1][scored]), x0[:, 1:][scored])

    ce = F.cross_entropy(model.logits(hidden[:, :t][noised.masked]), x0[noised.masked], reduction="none")
    diff = (ce / noised.prob[noised.masked]).sum() / (x0 != model.config.pad_token_id).sum()
    return Losses(ar + alpha * diff, ar, diff)
