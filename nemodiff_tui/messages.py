"""Messages the worker threads post to the app (`post_message` is thread-safe)."""

from __future__ import annotations

from textual.message import Message

from engine.events import Event
from nemodiff_tui.engine_factory import CompletionEngine


class GenerationEvent(Message):
    """One engine event of generation `serial`, with the text of each slot when it is a Step, and
    the suggestion pipeline's state once it took the event (the text it keeps, whether it is final)."""

    def __init__(
        self, serial: int, event: Event, texts: tuple[str, ...] = (), kept: str = "", final: bool = False
    ):
        super().__init__()
        self.serial = serial
        self.event = event
        self.texts = texts
        self.kept = kept
        self.final = final


class GenerationFailed(Message):
    def __init__(self, serial: int, error: str):
        super().__init__()
        self.serial = serial
        self.error = error


class ModelProgress(Message):
    def __init__(self, model: str, done: int, total: int):
        super().__init__()
        self.model = model
        self.done = done
        self.total = total


class ModelLoaded(Message):
    def __init__(self, model: str, engine: CompletionEngine):
        super().__init__()
        self.model = model
        self.engine = engine


class ModelFailed(Message):
    def __init__(self, model: str, error: str):
        super().__init__()
        self.model = model
        self.error = error
