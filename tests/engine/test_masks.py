"""Masks built once per pass shape (engine/model/masks.py) equal the masks built per pass."""

from __future__ import annotations

import torch

from engine.model.masks import SHAPES, MaskBook
from engine.decoding.modes.self_spec import quadratic_mask
from kernels.attention_ref import full_mask
from kernels.ops import Pattern


def test_band_views_equal_per_pass_masks_at_every_cache_length():
    book, cpu = MaskBook(20, torch.device("cpu")), torch.device("cpu")
    for pattern, t, chunk in [
        (Pattern.CAUSAL, 1, None),
        (Pattern.CAUSAL, 5, None),
        (Pattern.BIDIRECTIONAL, 5, None),
        (Pattern.MASK, 6, quadratic_mask(2)),
    ]:
        for length in (0, 1, 7, 20):
            got, want = book.full(pattern, t, length, chunk), full_mask(pattern, t, length, chunk, cpu)
            assert (got is None) == (want is None)
            if want is not None:
                assert torch.equal(got, want)
    assert book.full(Pattern.CAUSAL, 5, 21).shape == (5, 26)  # past the room: built for the pass


def test_a_new_mask_under_an_old_shape_is_not_served_stale():
    book = MaskBook(8, torch.device("cpu"))
    a, b = torch.eye(3, dtype=torch.bool), torch.ones(3, 3, dtype=torch.bool)
    assert torch.equal(book.full(Pattern.MASK, 3, 2, a)[:, 2:], a)
    assert torch.equal(book.full(Pattern.MASK, 3, 2, b)[:, 2:], b)
    for t in range(2, 3 + SHAPES):  # more shapes than are kept: the oldest go
        book.full(Pattern.CAUSAL, t, 0)
    assert len(book._bands) == SHAPES
