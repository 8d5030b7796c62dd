"""The app on a real engine: the tiny random NLD checkpoint, loaded and generating on CPU."""

from __future__ import annotations

from pathlib import Path

from nemodiff_tui.app import NemodiffApp
from nemodiff_tui.config import Settings
from tests.tui.pilot_helpers import wait_for


async def test_completion_on_the_tiny_checkpoint(tiny_checkpoint: Path):
    settings = Settings(
        model=str(tiny_checkpoint),
        device="cpu",
        mode="diffusion",
        max_new_tokens=12,
        debounce_ms=10_000,
        cursor_blink=False,
    )
    app = NemodiffApp([], settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.engine is not None, timeout=60)
        app.tabs.current.insert("def fibonacci(n):\n")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.latency.records, timeout=60)
        trace = app.denoise.trace
        assert trace.done is not None and trace.done.mode == "diffusion"
        assert any(f.step.kind == "denoise" for f in trace.frames)
        assert len(trace.frames[-1].texts) == len(trace.frames[-1].step.tokens)
        record = app.latency.records[-1]
        assert record.request_to_done_ms > 0 and record.nfe == trace.done.nfe
        assert app.tabs.current.text == "def fibonacci(n):\n"  # nothing accepted, nothing inserted


async def test_completion_through_a_backend_server(tiny_checkpoint: Path):
    """`nemodiff --backend URL`: the app on a RemoteEngine talking to a real `nemodiff serve`."""
    import engine
    from engine.decoding.remote import connect
    from engine.serve.app import create_app
    from nemodiff_tui.engine_factory import engine_factory
    from tests.serve.util import serving

    with serving(create_app(engine.load(str(tiny_checkpoint), device="cpu"), mode="diffusion")) as url:
        settings = Settings(max_new_tokens=12, debounce_ms=10_000, cursor_blink=False)
        app = NemodiffApp([], settings, engine_factory=engine_factory(backend=url))
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.engine is not None, timeout=60)
            app.tabs.current.insert("def fibonacci(n):\n")
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: app.latency.records, timeout=60)
            assert app.denoise.trace.done is not None and app.latency.records[-1].nfe > 0
            assert connect(url).name == app.engine.name
