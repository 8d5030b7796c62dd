"""The tiny NLD model gives the same hidden states with the Triton kernels as with the torch references."""

from __future__ import annotations

import pytest
import torch

from engine.decoding.modes.self_spec import quadratic_mask
from engine.model.config import preset
from engine.model.network import NLDModel
from kernels import dispatch
from kernels.ops import Pattern


def _passes(model: NLDModel) -> list[torch.Tensor]:
    """Prefill, a bidirectional chunk, a quadratic self-spec pass and an AR step over one cache."""
    g = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    cache = model.new_cache(32, scratch=8)
    outs = []
    for t, pattern, mask, commit in [
        (5, Pattern.CAUSAL, None, True),
        (4, Pattern.BIDIRECTIONAL, None, False),
        (6, Pattern.MASK, quadratic_mask(2), False),
        (1, Pattern.CAUSAL, None, True),
    ]:
        tokens = torch.randint(0, vocab, (1, t), generator=g)
        positions = torch.arange(cache.length, cache.length + t)
        outs.append(model(tokens, positions, cache, pattern, mask))
        if commit:
            cache.commit(t)
    return outs


@pytest.mark.parametrize("fused", [False, True])
@torch.inference_mode()
def test_triton_backend_matches_torch_backend(monkeypatch: pytest.MonkeyPatch, fused: bool):
    """`fused`: the engine's fused q/k/v and gate/up projections hand the kernels strided views."""
    torch.manual_seed(0)
    model = NLDModel(preset("tiny"))
    if fused:
        model.fuse_projections()
    monkeypatch.setattr(dispatch, "_backend", "torch")
    expected = _passes(model)
    monkeypatch.setattr(dispatch, "_backend", "triton")
    for got, want in zip(_passes(model), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_training_takes_the_torch_path_whatever_the_backend(monkeypatch: pytest.MonkeyPatch):
    """The Triton kernels have no backward: forcing them must not cost a training step its gradients."""
    from engine.training.objective import joint_loss

    model = NLDModel(preset("tiny"))
    x0 = torch.randint(5, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    grads = {}
    for name in ("torch", "triton"):
        monkeypatch.setattr(dispatch, "_backend", name)
        model.zero_grad()
        joint_loss(model, x0, 8, torch.Generator().manual_seed(1)).total.backward()
        grads[name] = [p.grad.clone() for p in model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(grads["torch"], grads["triton"]))
    assert any(g.abs().sum() > 0 for g in grads["triton"])
