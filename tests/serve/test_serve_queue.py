"""The bounded queue: disconnects cancel within a forward and free the engine; overload gets 503."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from engine.events import Step
from engine.serve.app import create_app
from tests.serve.util import Recording, serving, sse, wait_for

LONG = 4000  # tokens: many seconds of work unless cancelled (the context window caps it lower)


class Paced(Recording):
    """Each forward pass takes at least PASS_S: the tiny model writes its whole window in about half
    a second, so a long generation must not depend on how fast the engine is."""

    PASS_S = 0.005

    def generate(self, request):
        generation = super().generate(request)

        class Slowed:
            def __iter__(self):
                for event in generation:
                    if isinstance(event, Step):
                        time.sleep(Paced.PASS_S)
                    yield event

            def cancel(self) -> None:
                generation.cancel()

        return Slowed()


@pytest.fixture(scope="module")
def recorded(serve_engine):
    recording = Paced(serve_engine)
    with serving(create_app(recording, mode="ar")) as url:
        yield url, recording


def assert_engine_free(url: str) -> None:
    t0 = time.monotonic()
    r = httpx.post(
        f"{url}/v1/completions", json={"prompt": "x", "max_tokens": 4, "temperature": 0}, timeout=10
    )
    assert r.status_code == 200 and time.monotonic() - t0 < 3


def test_disconnect_mid_stream_cancels_the_generation(recorded):
    url, recording = recorded
    before = len(recording.dones)
    body = {"prompt": "def f(x):", "max_tokens": LONG, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=30) as r:
        lines = r.iter_lines()
        assert len(sse(next(lines) for _ in range(5))) >= 2  # a few chunks arrived, then we hang up
    assert wait_for(lambda: len(recording.dones) > before)
    done = recording.dones[-1]
    assert done.stop_reason == "cancelled" and done.n_tokens < LONG
    assert_engine_free(url)


def test_disconnect_while_waiting_for_a_plain_answer_cancels_it(recorded):
    url, recording = recorded
    before = len(recording.dones)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/infill", json={"input_prefix": "x", "n_predict": LONG}, timeout=0.5)
    assert wait_for(lambda: len(recording.dones) > before)
    assert recording.dones[-1].stop_reason == "cancelled" and recording.dones[-1].n_tokens < LONG
    assert_engine_free(url)


async def test_fifty_concurrent_requests_complete_or_get_503(serve_engine):
    with serving(create_app(serve_engine, mode="ar", max_queue=3)) as url:
        async with httpx.AsyncClient(timeout=60) as client:

            async def one(i: int) -> httpx.Response:
                return await client.post(
                    f"{url}/v1/completions", json={"prompt": f"x{i}", "max_tokens": 48, "temperature": 0}
                )

            responses = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 60)
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503}
        assert statuses.count(200) >= 3 and statuses.count(503) >= 1
        for r in responses:
            if r.status_code == 503:
                assert r.headers["retry-after"].isdigit() and r.json()["error"]["type"] == "server_busy"
            else:
                assert r.json()["usage"]["completion_tokens"] <= 48
        assert wait_for(lambda: httpx.get(f"{url}/health").json()["queue"] == 0)


class Held(Recording):
    """Every generation waits for `go` before its first event: a job that holds the engine."""

    def __init__(self, engine):
        super().__init__(engine)
        self.go = threading.Event()

    def generate(self, request):
        generation, go = super().generate(request), self.go

        class Waiting:
            def __iter__(self):
                go.wait(10)
                yield from generation

            def cancel(self) -> None:
                generation.cancel()

        return Waiting()


def test_a_request_given_up_while_queued_frees_its_slot_at_once(serve_engine):
    """An editor cancels its stale request at every keystroke: dead jobs must not fill the queue."""
    held = Held(serve_engine)
    with serving(create_app(held, mode="ar", max_queue=2)) as url:
        infill = {"input_prefix": "x", "n_predict": 4}
        first = threading.Thread(
            target=httpx.post, args=(f"{url}/infill",), kwargs={"json": infill, "timeout": 30}
        )
        first.start()
        assert wait_for(lambda: httpx.get(f"{url}/health").json()["queue"] == 1)
        with pytest.raises(httpx.ReadTimeout):  # queued behind it, then given up
            httpx.post(f"{url}/infill", json=infill, timeout=0.5)
        assert wait_for(lambda: httpx.get(f"{url}/health").json()["queue"] == 1)
        with pytest.raises(httpx.ReadTimeout):  # admitted, not refused with 503
            httpx.post(f"{url}/infill", json=infill, timeout=0.5)
        held.go.set()
        first.join(10)
        assert wait_for(lambda: httpx.get(f"{url}/health").json()["queue"] == 0)
