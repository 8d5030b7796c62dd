"""Batches made ahead in a background process are the stream's own, and resume exactly."""

import pytest

from engine.prompts.bpe import text_encoder
from engine.training.data import TrainStream
from engine.training.prefetch import Prefetcher


def test_prefetched_batches_are_the_streams_and_their_state_resumes_exactly(sample_texts, tiny_tokenizer):
    encoder = text_encoder(tiny_tokenizer)
    stream = lambda: TrainStream(sample_texts, encoder, 64, seed=3, fim_rate=0.5)  # noqa: E731
    inline = stream()
    with Prefetcher(stream(), 8, depth=4) as ahead:
        for _ in range(6):
            assert ahead.next_batch().tolist() == inline.next_batch(8).tolist()
        state = ahead.state  # the producer has run further ahead by now; this is where *we* stand
    resumed = stream()
    resumed.load_state_dict(state)
    assert resumed.next_batch(8).tolist() == inline.next_batch(8).tolist()


def test_a_producer_that_dies_is_an_error_not_a_hang(sample_texts, tiny_tokenizer):
    broken = TrainStream(sample_texts, text_encoder(tiny_tokenizer), 64, seed=0, fim_rate=0.0)
    broken.texts = []  # the producer's first batch fails
    broken.order = [0]
    with Prefetcher(broken, 2) as ahead, pytest.raises(RuntimeError, match="producer stopped"):
        ahead.next_batch()
