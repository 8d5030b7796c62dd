"""Copy drafts (prompt-lookup decoding): propose what followed the generated tail elsewhere in the text.

Completions repeat the text around the cursor (identifiers, argument lists, the next `elif`, the
next test), and the prompt already holds that text: the prefix, the suffix and any context chunks
from other files. The drafter finds the longest recent n-gram of the tokens so far (prompt and
output) that occurred before, and proposes the tokens that followed its latest earlier occurrence.
A verifier accepts only what the model itself would have chosen, so a wrong copy costs nothing but
the slots it filled.

The index maps every n-gram (MIN_NGRAM..MAX_NGRAM tokens) that is followed by at least one token
to the end of its latest occurrence; it grows by a few dict writes per committed token, so a
proposal that finds nothing costs a few dict lookups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_NGRAM = 1  # even a one-token match beats the model's own draft per pass (docs/BENCHMARKS.md)
MAX_NGRAM = 4


@dataclass
class CopyDrafter:
    """The n-gram index of one request's tokens; `propose` syncs it with the output first."""

    tokens: list[int]
    min_ngram: int = MIN_NGRAM
    max_ngram: int = MAX_NGRAM
    _index: dict[tuple[int, ...], int] = field(default_factory=dict, repr=False)
    _indexed: int = field(default=0, repr=False)  # tokens[:_indexed] have their n-grams indexed
    _prompt: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.tokens = list(self.tokens)
        self._prompt = len(self.tokens)
        self._catch_up()

    def _catch_up(self) -> None:
        """Index the n-grams that end just before each token not yet indexed (they now have a follower)."""
        tokens, index = self.tokens, self._index
        for end in range(max(self._indexed, 1), len(tokens)):
            # the n-grams tokens[end-n:end], each followed by tokens[end]
            for n in range(self.min_ngram, min(self.max_ngram, end) + 1):
                index[tuple(tokens[end - n : end])] = end
        self._indexed = max(self._indexed, len(tokens))

    def propose(self, output: list[int], k: int) -> list[int]:
        """`k` tokens that followed the longest n-gram ending the prompt + `output` in an earlier
        occurrence (its latest one); [] when no n-gram of at least `min_ngram` recurs. A copy that
        runs into the end of the text goes on copying itself: the text repeats with that period."""
        self.tokens.extend(output[len(self.tokens) - self._prompt :])
        self._catch_up()
        tokens = self.tokens
        for n in range(min(self.max_ngram, len(tokens)), self.min_ngram - 1, -1):
            end = self._index.get(tuple(tokens[-n:]))
            if end is not None:
                period = len(tokens) - end
                return [tokens[end + i % period] for i in range(k)]
        return []
