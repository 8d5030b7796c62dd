"""Triton argmax/confidence and accept length against the torch references, under the interpreter."""

from __future__ import annotations

import math

import pytest
import torch

from kernels.token_select import accept_length_triton, argmax_confidence_triton
from kernels.token_select_ref import accept_length_ref, argmax_confidence_ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("vocab,splits", [(1000, 1), (5000, 1), (5000, 3), (300, None)])
@pytest.mark.parametrize("mask_id", [None, 7])
def test_argmax_confidence(dtype, vocab, splits, mask_id):
    g = torch.Generator().manual_seed(0)
    logits = (4 * torch.randn(5, vocab, generator=g)).to(dtype)
    logits[0, 7] = 100.0  # the masked id would win row 0
    logits[1, vocab - 1] = 50.0  # the winner is the last column
    logits[2] = -1e4  # a flat row: every probability 1/V
    ids, conf = argmax_confidence_triton(logits, mask_id, num_splits=splits)
    ref_ids, ref_conf = argmax_confidence_ref(logits, mask_id)
    assert ids.dtype == torch.int64 and conf.dtype == torch.float32
    assert ids.tolist() == ref_ids.tolist()
    torch.testing.assert_close(conf, ref_conf, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("splits", [1, 4])
def test_ties_pick_the_lowest_index_like_torch(splits):
    logits = torch.zeros(3, 4096)
    logits[0, [9, 700, 4095]] = 5.0  # same lane (9 + 2048k would be), different lanes, different spans
    logits[1, [2057, 9]] = 5.0  # 2057 = 9 + 2048: the same lane of a 2048-wide block
    logits[2, [3000, 3001]] = 5.0
    ids, _ = argmax_confidence_triton(logits, None, num_splits=splits)
    assert ids.tolist() == torch.max(logits, dim=-1).indices.tolist() == [9, 9, 3000]


@pytest.mark.parametrize("splits", [1, 3])
def test_confidence_keeps_the_mask_token_in_the_softmax(splits):
    """NVIDIA's rule: the mask id is never chosen, but its probability stays in the softmax."""
    logits = torch.full((2, 3000), -1e4)
    logits[0, [7, 2900]] = 3.0  # the mask (7) ties the winner: it takes half the probability
    logits[1, [7, 2900]] = torch.tensor([3.0 + math.log(3), 3.0])  # mask 3x as likely: the winner gets 1/4
    for ids, conf in (
        argmax_confidence_triton(logits, 7, num_splits=splits),
        argmax_confidence_ref(logits, 7),
    ):
        assert ids.tolist() == [2900, 2900]
        torch.testing.assert_close(conf, torch.tensor([0.5, 0.25]))


def test_leading_dims_and_strided_rows():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 640, generator=g)[..., :600]
    ids, conf = argmax_confidence_triton(logits, 5)
    ref_ids, ref_conf = argmax_confidence_ref(logits, 5)
    assert ids.shape == (2, 3) and torch.equal(ids, ref_ids)
    torch.testing.assert_close(conf, ref_conf, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "n,first_diff",
    [(0, None), (1, None), (1, 0), (33, None), (33, 0), (33, 17), (33, 32), (1500, 1300), (1500, 100)],
)
def test_accept_length(n, first_diff):
    draft = torch.arange(n) * 3 + 1
    target = draft.clone()
    if first_diff is not None:
        target[first_diff] = -5
        target[first_diff + 1 :] = 0  # later mismatches too
    expected = accept_length_ref(draft, target)
    assert accept_length_triton(draft, target) == expected == (n if first_diff is None else first_diff)


def test_accept_length_strided_and_mixed_int_types():
    draft = torch.tensor([4, 0, 5, 0, 6, 0, 7, 0])[::2]
    target = torch.tensor([4, 5, 9, 7], dtype=torch.int32)
    assert accept_length_triton(draft, target) == accept_length_ref(draft, target) == 2
