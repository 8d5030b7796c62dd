"""The app on the recorded engine, as a program: what the tmux tests run in a real terminal.

    python -m tests.tui.fake_app FILE...

Settings as the Pilot tests use them, with two alternatives; a sampled alternative answers
`n <= 1` where the greedy one says `n < 2`, so cycling shows a difference.
"""

from __future__ import annotations

import dataclasses
import sys

from engine.events import Commit
from engine.request import Request
from nemodiff_tui.app import NemodiffApp
from nemodiff_tui.config import Settings
from tests.tui.fake_engine import FakeEngine, FakeGeneration


class SampledEngine(FakeEngine):
    def generate(self, request: Request) -> FakeGeneration:
        generation = super().generate(request)
        if request.config.seed:
            generation.events = [
                dataclasses.replace(e, text=e.text.replace("n < 2", "n <= 1")) if isinstance(e, Commit) else e
                for e in generation.events
            ]
        return generation


def main() -> None:
    engine = SampledEngine.from_trace(delay=0.005)
    settings = Settings(debounce_ms=100, cursor_blink=False, mode="diffusion", prefetch=False, alternatives=2)
    NemodiffApp(sys.argv[1:], settings, engine_factory=engine.factory).run()


if __name__ == "__main__":
    main()
