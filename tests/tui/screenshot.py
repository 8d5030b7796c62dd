"""Take docs/screenshot.svg: the app mid-denoise (Textual's own SVG export).

    .venv/bin/python tests/tui/screenshot.py                      # the recorded trace
    .venv/bin/python tests/tui/screenshot.py --model demo --mode self-spec

With `--model`, one completion runs on the real engine first and its events are replayed, so the
picture can stop in the middle of a block however fast the GPU is.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.request import GenerationConfig, Request  # noqa: E402
from nemodiff_tui.app import NemodiffApp  # noqa: E402
from nemodiff_tui.completion import context_at  # noqa: E402
from nemodiff_tui.config import Settings  # noqa: E402
from tests.tui.fake_engine import FakeEngine  # noqa: E402
from tests.tui.pilot_helpers import wait_for  # noqa: E402

CODE = "def fibonacci(n):\n"


def recorded(model: str, mode: str) -> FakeEngine:
    import engine

    real = engine.load(model)
    ctx = context_at(CODE.split("\n"), 1, 0, 6000)
    request = Request(
        prefix=ctx.prefix, suffix=ctx.suffix, config=GenerationConfig(mode=mode, max_new_tokens=64)
    )
    events = list(real.generate(request))
    return FakeEngine(events, real.tokenizer, real.resolve_mode(request.config)[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="record a real generation on this model (default: the recorded trace)")
    p.add_argument("--mode", default="diffusion")
    p.add_argument("--step", type=int, default=9, help="forward pass to stop at")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.svg")
    args = p.parse_args()
    engine = recorded(args.model, args.mode) if args.model else FakeEngine.from_trace()
    engine.delay, engine.hold_at = 0.0, args.step
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fib.py"
        path.write_text(CODE)
        app = NemodiffApp(
            [path],
            Settings(debounce_ms=10_000, cursor_blink=False, mode=args.mode),
            engine_factory=engine.factory,
        )

        async def shoot(pilot) -> None:
            await wait_for(pilot, lambda: app.engine is not None)
            app.tabs.current.move_cursor((1, 0))
            app.action_complete()
            await wait_for(
                pilot, lambda: app.denoise.trace is not None and len(app.denoise.trace.frames) >= args.step
            )
            app.clear_notifications()
            await pilot.pause(0.2)
            app.save_screenshot(str(args.out.name), str(args.out.parent))
            app.exit()

        app.run(headless=True, size=(100, 30), auto_pilot=shoot)
    print(args.out)


if __name__ == "__main__":
    main()
