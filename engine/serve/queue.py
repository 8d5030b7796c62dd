"""A bounded queue in front of the engine.

The engine runs one generation at a time, so the server runs every generation in one worker
thread and keeps at most `max_queue` requests (the running one included); the next one is told
to come back later (503 with Retry-After) instead of piling up. Events cross from the worker
thread to the event loop through an asyncio queue; a client that goes away cancels its
generation, which the engine honours within one forward pass.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request as HTTPRequest

from engine.events import Event
from engine.prompts.suggestion import Pipeline
from engine.request import Request

if TYPE_CHECKING:  # torch: `nemodiff serve --help` and bad arguments answer before it loads
    from engine.decoding.engine import Engine, Generation

MAX_QUEUE = 8  # default: requests held at once, the running one included
RETRY_AFTER_S = 1
DISCONNECT_POLL_S = 0.05  # how often a waiting handler checks that its client is still there
_END = object()  # the worker's last item for a job
CLIENT_GONE = 499  # nginx's "client closed request": the status of an answer nobody will read


class QueueFull(Exception):
    """Every slot is taken: the client should retry after `retry_after` seconds."""

    def __init__(self, held: int):
        super().__init__(f"the server is busy ({held} requests queued): retry in {RETRY_AFTER_S} s")
        self.retry_after = RETRY_AFTER_S


class Job:
    """One request's generation: run by the worker thread, read by one handler on the event loop."""

    def __init__(
        self,
        request: Request,
        loop: asyncio.AbstractEventLoop,
        release: Callable[[], None],
        pipeline: Pipeline | None = None,
    ):
        self.request = request
        self.pipeline = pipeline  # run in the worker thread, so a rule that fires stops the next forward
        self._loop = loop
        self._items: asyncio.Queue = asyncio.Queue()
        self._cancelled = threading.Event()
        self._generation: Generation | None = None
        self._release = release  # gives the job's queue slot back
        self._state = threading.Lock()
        self._started = self._released = False

    def cancel(self) -> None:
        """Stop the generation (within one forward), or keep it from starting; any thread. A job
        still waiting gives its slot back now: an editor cancels a request at every keystroke, and
        dead jobs must not fill the queue."""
        self._cancelled.set()
        if self._generation is not None:
            self._generation.cancel()
        with self._state:
            waiting = not self._started
        if waiting:
            self.free()

    def free(self) -> None:
        """Give the queue slot back, once."""
        with self._state:
            if self._released:
                return
            self._released = True
        self._release()

    def run(self, engine: Engine) -> None:
        """In the worker thread: generate, handing every event (or the error) to the event loop."""
        with self._state:
            self._started = True
        try:
            if not self._cancelled.is_set():
                self._generation = engine.generate(self.request)
                if self._cancelled.is_set():  # cancelled while the generation was being created
                    self._generation.cancel()
                generation = self._generation
                for event in self.pipeline.follow(generation) if self.pipeline is not None else generation:
                    self._put(event)
        except Exception as e:  # handed to the handler, which answers with it
            self._put(e)
        finally:
            self._put(_END)
            self.free()

    def _put(self, item: object) -> None:
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutting down): nobody is listening
            self.cancel()

    async def next(self) -> object:
        return await self._items.get()


class EngineQueue:
    """Admits up to `max_queue` jobs and runs them one by one in a worker thread."""

    def __init__(self, engine: Engine, max_queue: int):
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self.engine = engine
        self.max_queue = max_queue
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._held = 0
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="nemodiff-engine", daemon=True)
        self._worker.start()

    @property
    def size(self) -> int:
        """Requests admitted and not finished, the running one included."""
        return self._held

    def submit(self, request: Request, pipeline: Pipeline | None = None) -> Job:
        """Queue a request (from the event loop), or refuse it: RequestError when the engine could
        not serve it (checked now, so the client hears at once), QueueFull when every slot is taken.
        With a `pipeline` (built for `request`), the job's events go through it."""
        self.engine.validate(request)
        with self._lock:
            if self._held >= self.max_queue:
                raise QueueFull(self._held)
            self._held += 1
        job = Job(request, asyncio.get_running_loop(), self._release, pipeline)
        self._jobs.put(job)
        return job

    def _release(self) -> None:
        with self._lock:
            self._held -= 1

    def close(self) -> None:
        """Let the worker finish the jobs it holds and exit."""
        self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job.run(self.engine)  # frees the job's slot, unless a cancel while it waited already did


async def events(job: Job, client: HTTPRequest) -> AsyncIterator[Event]:
    """The job's events as they arrive. Ends early, cancelling the generation, when the client
    disconnects or the caller stops reading; re-raises an error the engine raised."""
    checked = time.monotonic()
    try:
        while True:
            try:
                item = await asyncio.wait_for(job.next(), DISCONNECT_POLL_S)
            except asyncio.TimeoutError:
                item = None
            if item is None or time.monotonic() - checked > DISCONNECT_POLL_S:
                if await client.is_disconnected():
                    return
                checked = time.monotonic()
            if item is None:
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        job.cancel()
