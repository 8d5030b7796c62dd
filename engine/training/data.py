"""Fixed-length training sequences from the corpus, reproducible and resumable exactly.

Each sequence is, with probability `fim_rate`, one FIM example (PSM, or SPM at `SPM_RATE`; cut at a
line's indentation at `LINE_RATE`, else at random characters) and otherwise a window of the plain
stream. The plain stream is `<s>file</s><s>file</s>...` over the files in a fresh shuffled order
each epoch, cut into windows of `seq_len` tokens (a file spans many windows: stdlib files average
~5k tokens). FIM examples are not cut from that stream: a whole-file FIM example would almost never
fit one window, so prefix, suffix and middle would rarely be seen together. Instead a FIM example
is made from a line-aligned span of a file chosen in proportion to its length and starts at
position 0 as an inference prompt does. Span lengths are drawn log-uniformly up to what fits one
sequence; examples are packed into a sequence while the next one drawn fits, and the plain stream
fills the rest. Spans that always filled the sequence (the shipped model's first 22,608 steps) put
every middle's `</s>` at about position 250, and the model learnt to end a middle by position
instead of by content (docs/MODEL_CARD.md, "Ending a middle"); packing gives that `</s>` 2.5
targets per FIM sequence instead of one.
With probability `rename_rate` a file read for either kind comes renamed (`renaming.py`).
"""

from __future__ import annotations

import bisect
import math
import random
from itertools import accumulate
from typing import Any

import torch
from tokenizers import Tokenizer

from engine.prompts.bpe import BOS, EOS
from engine.training.fim_transform import LINE_RATE, SPM_RATE, fim_example
from engine.training.renaming import Renamer, substitute

_FIM_OVERHEAD = 5  # <s> <fim_prefix> <fim_suffix> <fim_middle> </s>
_CUT_SLACK = 6  # tokenizing three pieces separately can take a few more tokens than the whole span
_MIN_FIM_SPAN = 16  # tokens: a new file's first lines


class TrainStream:
    def __init__(
        self,
        texts: list[str],
        encoder: Tokenizer,
        seq_len: int,
        seed: int,
        fim_rate: float,
        rename_rate: float = 0.0,
    ):
        self.texts, self.encoder, self.seq_len, self.seed, self.fim_rate = (
            texts,
            encoder,
            seq_len,
            seed,
            fim_rate,
        )
        self.rename_rate, self.renamer = rename_rate, Renamer(texts)
        self.ends = list(accumulate(len(t) for t in texts))
        self.rng = random.Random(seed)
        self.epoch, self.cursor = 0, 0
        self.order = self._order(0)
        self.buffer: list[int] = []
        self.pos = 0

    def _order(self, epoch: int) -> list[int]:
        order = list(range(len(self.texts)))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def _renamed(self, index: int, text: str) -> str:
        """`text` (file `index` or a piece of it), renamed with probability `rename_rate`."""
        if self.rename_rate and self.rng.random() < self.rename_rate:
            return substitute(text, self.renamer.mapping(index, self.rng))
        return text

    def _encode(self, text: str) -> list[int]:
        return self.encoder.encode(text, add_special_tokens=False).ids

    def _plain(self, n: int) -> list[int]:
        """The next `n` tokens of the plain stream."""
        while len(self.buffer) - self.pos < n:
            if self.cursor == len(self.order):
                self.epoch, self.cursor = self.epoch + 1, 0
                self.order = self._order(self.epoch)
            index = self.order[self.cursor]
            text = self._renamed(index, self.texts[index])
            self.cursor += 1
            self.buffer = self.buffer[self.pos :] + [BOS, *self._encode(text), EOS]
            self.pos = 0
        out = self.buffer[self.pos : self.pos + n]
        self.pos += n
        return out

    def _fim(self, budget: int) -> list[int]:
        """A FIM example from a random span of at most `budget` tokens."""
        at = self.rng.randrange(self.ends[-1])
        i = bisect.bisect_right(self.ends, at)
        text = self.texts[i]
        offset = at - (self.ends[i - 1] if i else 0)
        start = text.rfind("\n", 0, offset) + 1
        window = self._renamed(i, text[start : start + 8 * budget])
        offsets = self.encoder.encode(window, add_special_tokens=False).offsets
        span = window[: offsets[budget - 1][1]] if len(offsets) > budget else window
        while True:
            ids = fim_example(span, self.rng, self._encode, SPM_RATE, LINE_RATE)
            if len(ids) <= budget + _FIM_OVERHEAD + _CUT_SLACK:
                return ids
            span = span[: len(span) * 9 // 10]

    def _fim_row(self) -> list[int]:
        """FIM examples while the next one drawn fits, then the plain stream."""
        row: list[int] = []
        largest = self.seq_len - _FIM_OVERHEAD - _CUT_SLACK
        while True:
            budget = round(math.exp(self.rng.uniform(math.log(_MIN_FIM_SPAN), math.log(largest))))
            if len(row) + budget + _FIM_OVERHEAD + _CUT_SLACK > self.seq_len:
                return row + self._plain(self.seq_len - len(row))
            row += self._fim(budget)

    def next_rows(self, batch_size: int) -> list[list[int]]:
        """`batch_size` sequences of `seq_len` token ids."""
        return [
            self._fim_row() if self.rng.random() < self.fim_rate else self._plain(self.seq_len)
            for _ in range(batch_size)
        ]

    def next_batch(self, batch_size: int) -> torch.Tensor:
        """[batch_size, seq_len] token ids."""
        return torch.tensor(self.next_rows(batch_size), dtype=torch.long)

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "cursor": self.cursor,
            "buffer": self.buffer[self.pos :],
            "rng": self.rng.getstate(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor = state["epoch"], state["cursor"]
        self.order = self._order(self.epoch)
        self.buffer, self.pos = list(state["buffer"]), 0
        self.rng.setstate(state["rng"])


def eval_sequences(texts: list[str], encoder: Tokenizer, seq_len: int, count: int) -> torch.Tensor:
    """[count, seq_len] plain windows spread evenly over the packed `texts` (a fixed eval set)."""
    stream: list[int] = []
    for text in texts:
        stream += [BOS, *encoder.encode(text, add_special_tokens=False).ids, EOS]
    windows = len(stream) // seq_len
    if windows < count:
        raise ValueError(f"eval texts give {windows} windows of {seq_len} tokens, fewer than {count}")
    picks = [k * windows // count for k in range(count)]
    return torch.tensor([stream[w * seq_len : (w + 1) * seq_len] for w in picks], dtype=torch.long)
