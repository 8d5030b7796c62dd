"""Training batches made ahead in a background process, so a GPU never waits on tokenization.

Making a batch (tokenizing FIM pieces in Python) takes about as long as a GPU training step on
the demo model, so done in line it would halve a GPU's throughput. One producer process runs the
trainer's `TrainStream` exactly as the trainer would, and sends each batch together with the
stream's state after it. The trainer checkpoints the state that came with the last batch it
used, so a resumed run sees the same batches however far ahead the producer had run.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import signal
from typing import Any

import torch

from engine.training.data import TrainStream


def _produce(stream: TrainStream, batch_size: int, out: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # close() ends us, whatever handler a fork inherited
    while True:
        rows = stream.next_rows(batch_size)
        out.put((rows, stream.state_dict()))


class Prefetcher:
    """`next_batch()` gives the stream's batches in order; `state` is where the stream stands after
    the last one given (what a checkpoint stores)."""

    def __init__(self, stream: TrainStream, batch_size: int, depth: int = 8):
        self.state: dict[str, Any] = stream.state_dict()
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        self._queue = ctx.Queue(maxsize=depth)
        self._process = ctx.Process(target=_produce, args=(stream, batch_size, self._queue), daemon=True)
        self._process.start()

    def next_batch(self) -> torch.Tensor:
        """[batch_size, seq_len] token ids (int64)."""
        while True:
            try:
                rows, self.state = self._queue.get(timeout=1.0)
                return torch.tensor(rows, dtype=torch.long)
            except queue.Empty:
                if not self._process.is_alive():
                    raise RuntimeError(
                        f"the batch producer stopped (exit code {self._process.exitcode})"
                    ) from None

    def close(self) -> None:
        self._process.terminate()
        self._process.join()
        self._queue.close()

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
