"""Keystroke latency of the editor on a large file: how long the app takes to handle a key.

    PYTHONPATH=. python tests/tui/keystroke_bench.py [--kb 1024] [--keys 60] [--profile]

Opens a generated Python file of about `--kb` kB in the app (headless, on the recorded test
engine, so no model work competes), then types, moves and deletes in the middle of it and prints
the time from each key's press to the end of the last screen update it caused (median, p95,
max), the process's CPU time a key (steadier than wall time on a busy machine), and the open
time.
`--profile` prints the functions the keys spent their time in.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from nemodiff_tui.app import NemodiffApp
from nemodiff_tui.config import Settings
from tests.tui.fake_engine import FakeEngine

FUNCTION = '''def function_{i}(values, scale=2):
    """Scale the positive values: number {i}."""
    result = []
    for value in values:
        if value > 0:
            result.append(value * scale + {i})
    return result


'''
KEYS = [*"x = 1", "enter", "backspace", "backspace", "up", "down", "right", "left", "end", "home"]


def source(kb: int) -> str:
    parts, size, i = [], 0, 0
    while size < kb * 1024:
        parts.append(FUNCTION.format(i=i))
        size += len(parts[-1])
        i += 1
    return "".join(parts)


async def measure(
    path: Path, n_keys: int, profiler: cProfile.Profile | None
) -> tuple[float, list[float], float]:
    settings = Settings(
        cursor_blink=False, mode="diffusion", debounce_ms=10_000
    )  # keys alone, no completions
    app = NemodiffApp([path], settings, engine_factory=FakeEngine.from_trace(delay=0.0).factory)
    started = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        opened = time.perf_counter() - started
        editor = app.tabs.current
        editor.move_cursor((editor.document.line_count // 2, 0), center=True)
        await pilot.pause()
        screen = app.screen
        refresh, drawn = screen._compositor_refresh, []

        def timed_refresh() -> None:
            refresh()
            drawn.append(time.perf_counter())

        screen._compositor_refresh = timed_refresh
        times = []
        if profiler:
            profiler.enable()
        cpu = time.process_time()
        for i in range(n_keys):
            drawn.clear()
            t = time.perf_counter()
            await pilot.press(KEYS[i % len(KEYS)])
            await pilot.pause()  # the key's messages handled and the screen refreshed
            times.append((drawn[-1] if drawn else time.perf_counter()) - t)
        cpu = (time.process_time() - cpu) / n_keys
        if profiler:
            profiler.disable()
    return opened, times, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kb", type=int, default=1024)
    p.add_argument("--keys", type=int, default=60)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--profile-out", default=None, help="also write the profile here (for pstats)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "big.py"
        path.write_text(source(args.kb))
        profiler = cProfile.Profile() if args.profile else None
        opened, times, cpu = asyncio.run(measure(path, args.keys, profiler))
    ms = sorted(t * 1000 for t in times)
    print(
        f"{path.stat().st_size if path.exists() else args.kb * 1024} bytes: opened in {opened:.2f} s; "
        f"{len(ms)} keys: median {statistics.median(ms):.1f} ms, p95 {ms[int(len(ms) * 0.95) - 1]:.1f} ms, "
        f"max {ms[-1]:.1f} ms; CPU {cpu * 1000:.1f} ms a key (all threads)"
    )
    if profiler:
        profiler.dump_stats(args.profile_out) if args.profile_out else None
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
