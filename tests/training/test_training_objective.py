import pytest
import torch

from engine.model.config import preset
from engine.model.network import NLDModel
from engine.training.objective import add_noise, joint_loss, training_mask


def _naive_mask(t: int, block: int) -> torch.Tensor:
    """The rule written out: query q may see key k (indices into [x_t | x_0])."""
    mask = torch.zeros(2 * t, 2 * t, dtype=torch.bool)
    for q in range(2 * t):
        for k in range(2 * t):
            q_noised, k_noised = q < t, k < t
            qi, ki = q % t, k % t
            if q_noised and k_noised:
                mask[q, k] = qi // block == ki // block  # own noised block, both directions
            elif q_noised:
                mask[q, k] = ki // block < qi // block  # clean tokens of strictly earlier blocks
            elif not k_noised:
                mask[q, k] = ki <= qi  # clean stream: token-causal; never sees noised tokens
    return mask


@pytest.mark.parametrize(("t", "block"), [(8, 4), (12, 3), (8, 8), (6, 1)])
def test_training_mask_matches_naive_construction(t, block):
    assert torch.equal(training_mask(t, block), _naive_mask(t, block))


def test_training_mask_needs_whole_blocks():
    with pytest.raises(ValueError):
        training_mask(10, 4)


def test_noise_skips_pad_and_uses_one_probability_per_block():
    x0 = torch.randint(10, 100, (64, 32))
    x0[:, -5:] = 3
    noised = add_noise(x0, 8, mask_id=4, pad_id=3, gen=torch.Generator().manual_seed(0), eps=1e-3)
    assert not noised.masked[:, -5:].any()
    assert torch.equal(noised.tokens[noised.masked], torch.full_like(x0[noised.masked], 4))
    assert torch.equal(noised.tokens[~noised.masked], x0[~noised.masked])
    blocks = noised.prob.view(64, 4, 8)
    assert torch.equal(blocks, blocks[:, :, :1].expand_as(blocks))
    assert ((noised.prob >= 1e-3) & (noised.prob <= 1)).all()
    assert 0.3 < noised.masked[:, :-5].float().mean() < 0.7  # E[p] = 0.5


def test_ordered_blocks_mask_from_a_random_cut_on():
    x0 = torch.randint(10, 100, (4000, 16))
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    flat = add_noise(x0, 8, mask_id=4, pad_id=3, gen=gen(), eps=1e-3)
    ordered = add_noise(x0, 8, mask_id=4, pad_id=3, gen=gen(), eps=1e-3, ordered=1.0)
    blocks = ordered.masked.view(-1, 8)
    assert not blocks[:, 0].any() and blocks[:, -1].all()
    assert torch.equal(blocks, blocks.cummax(dim=1).values)  # once masked, masked to the block's end
    assert torch.allclose(blocks.float().mean(0), torch.arange(8) / 7, atol=0.02)
    assert torch.equal(ordered.prob.view(-1, 8), (torch.arange(8) / 7).expand(blocks.shape[0], 8))
    # The state a linear self-speculation draft is made from: first token known, the rest masked.
    draft_state = lambda n: (~n.masked.view(-1, 8)[:, 0] & n.masked.view(-1, 8)[:, 1:].all(1)).float().mean()  # noqa: E731
    assert abs(draft_state(ordered) - 1 / 7) < 0.02 and draft_state(ordered) > 5 * draft_state(flat)
    half = add_noise(x0, 8, mask_id=4, pad_id=3, gen=gen(), eps=1e-3, ordered=0.5)
    picked = half.prob.view(-1, 8)[:, 0] == 0
    assert 0.45 < picked.float().mean() < 0.55
    assert torch.equal(half.masked.view(-1, 8)[~picked], flat.masked.view(-1, 8)[~picked])


def test_a_few_steps_on_a_fixed_batch_lower_the_loss():
    torch.manual_seed(0)
    model = NLDModel(preset("tiny"))
    x0 = torch.randint(9, 512, (4, 32))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = joint_loss(model, x0, 8, torch.Generator().manual_seed(1))
        assert loss.ar.item() > 0 and loss.diff.item() > 0
        opt.zero_grad()
        loss.total.backward()
        opt.step()
        losses.append(loss.total.item())
    assert losses[-1] < 0.8 * losses[0]


def test_both_halves_see_what_inference_sees():
    """Clean half == a causal pass (AR mode); a noised block == a bidirectional pass over the cache of earlier text."""
    from kernels.ops import Pattern

    torch.manual_seed(0)
    model = NLDModel(preset("tiny")).eval()
    t, block, b = 16, 4, 2
    x0 = torch.randint(9, 512, (1, t))
    xt = torch.where(torch.rand(1, t) < 0.5, 4, x0)
    positions = torch.arange(t)
    with torch.no_grad():
        joint = model(
            torch.cat([xt, x0], 1), positions.repeat(2), pattern=Pattern.MASK, mask=training_mask(t, block)
        )
        causal = model(x0, positions, pattern=Pattern.CAUSAL)
        cache = model.new_cache(t)
        model(x0[:, : b * block], positions[: b * block], cache, Pattern.CAUSAL)
        cache.commit(b * block)
        span = slice(b * block, (b + 1) * block)
        denoise = model(xt[:, span], positions[span], cache, Pattern.BIDIRECTIONAL)
    torch.testing.assert_close(joint[:, t:], causal, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(joint[:, span], denoise, atol=1e-5, rtol=1e-5)


def test_dropout_acts_only_in_train_mode_and_still_trains():
    from engine.training.trainer import add_dropout

    torch.manual_seed(0)
    model = NLDModel(preset("tiny"))
    x = torch.randint(9, 512, (1, 16))
    with torch.no_grad():
        plain = model(x, torch.arange(16))
    add_dropout(model, 0.3)
    with torch.no_grad():
        a, b = model(x, torch.arange(16)), model(x, torch.arange(16))
        assert not torch.equal(a, b)  # train mode (a fresh module): each pass drops other units
        model.eval()
        assert torch.equal(model(x, torch.arange(16)), plain)  # eval: exactly the model without it
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = joint_loss(
            model,
            torch.randint(9, 512, (4, 32), generator=torch.Generator().manual_seed(2)),
            8,
            torch.Generator().manual_seed(1),
        )
        opt.zero_grad()
        loss.total.backward()
        opt.step()
        losses.append(loss.total.item())
    assert losses[-1] < 0.9 * losses[0]


def test_the_mask_token_is_inside_both_softmaxes():
    """NVIDIA trains with the mask token in the softmax, so the head's mask row learns to stay low."""
    torch.manual_seed(0)
    model = NLDModel(preset("tiny"))
    x0 = torch.randint(9, 512, (2, 32))
    joint_loss(model, x0, 8, torch.Generator().manual_seed(1)).total.backward()
    assert model.diffusion_head.weight.grad[model.config.mask_token_id].abs().sum() > 0
