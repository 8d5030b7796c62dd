"""Refitting the head's `<|mask|>` row on cached hidden states (engine/training/mask_row.py)."""

from __future__ import annotations

import torch

from engine.model.config import preset
from engine.model.network import NLDModel
from engine.training.mask_row import MaskRowSettings, collect, fit_row, mask_loss, mask_probability
from engine.training.objective import joint_loss
from engine.training.settings import Settings


def _model_and_batch():
    torch.manual_seed(0)
    model = NLDModel(preset("tiny")).eval()
    return model, torch.randint(9, 512, (2, 32))


def test_the_cached_loss_moves_exactly_as_the_joint_loss_does():
    """Only the softmax denominators depend on the mask row, so changing the row changes the real
    objective by exactly the change of `mask_loss` (same batch, same noise)."""
    model, x0 = _model_and_batch()
    scored = collect(model, [(x0, 8)], Settings(), torch.Generator().manual_seed(3))
    row = model.diffusion_head.weight[model.config.mask_token_id]
    old, new = row.detach().clone(), 3 * scored.hidden.mean(0)  # a row that makes the mask likely
    totals = []
    with torch.no_grad():
        for r in (old, new):
            row.copy_(r)
            totals.append(joint_loss(model, x0, 8, torch.Generator().manual_seed(3)).total.item())
    assert totals[1] - totals[0] > 0.1
    assert abs((totals[1] - totals[0]) - (mask_loss(new, scored) - mask_loss(old, scored)).item()) < 1e-4


def test_fitting_the_row_makes_the_mask_improbable():
    model, x0 = _model_and_batch()
    scored = collect(model, [(x0, 8), (x0, 16)], Settings(), torch.Generator().manual_seed(3))
    bad = 3 * scored.hidden.mean(0)
    fitted = fit_row(bad, scored, MaskRowSettings(steps=200))
    assert mask_probability(bad, scored).mean() > 0.5
    assert mask_probability(fitted, scored).max() < 0.01
    assert mask_loss(fitted, scored) < 0.01 * mask_loss(bad, scored)
