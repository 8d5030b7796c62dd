"""Copy drafts: the longest recent n-gram of the text so far, found earlier, proposes what followed it."""

from __future__ import annotations

from engine.decoding.copy_draft import CopyDrafter


def test_proposes_what_followed_the_longest_latest_match():
    d = CopyDrafter([1, 2, 3, 4, 5, 9, 3, 4, 6, 7], min_ngram=1, max_ngram=3)
    assert d.propose([], 3) == []  # 7 never occurred before
    assert d.propose([3, 4], 3) == [6, 7, 3]  # "3 4" last occurred before 6 7; the output extends the text
    assert d.propose([3, 4, 5], 4) == [9, 3, 4, 6]  # the longest match, "3 4 5", in the prompt
    assert d.propose([3, 4, 5, 9, 2, 3], 2) == [4, 5]  # the output is indexed as it grows


def test_longer_matches_win_over_later_shorter_ones():
    d = CopyDrafter([5, 1, 2, 10, 11, 7, 2, 20, 21, 1], min_ngram=1, max_ngram=3)
    assert d.propose([2], 2) == [10, 11]  # "1 2" (two tokens) beats the later one-token match "2" -> 20
    assert CopyDrafter([5, 1, 2, 10, 11, 7, 2, 20, 21, 1], min_ngram=1, max_ngram=1).propose([2], 2) == [
        20,
        21,
    ]


def test_min_ngram_and_a_copy_that_reaches_the_end_of_the_text_repeats():
    assert CopyDrafter([8, 9, 8], min_ngram=2).propose([], 4) == []  # only "8" recurs
    assert CopyDrafter([8, 9, 8], min_ngram=1).propose([], 4) == [9, 8, 9, 8]  # "8 9" repeats
