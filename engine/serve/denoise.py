"""`POST /v1/denoise`: every engine event of one generation as server-sent events, so a remote
viewer (`nemodiff --backend URL`) can draw the denoising, not just the final text.

The body is an engine Request as JSON: `{"prompt": ...}` or `{"prefix": ..., "suffix": ...}`,
with `"config": {...}` holding GenerationConfig's fields. Each event is `to_json(event)`; Step
events also carry `texts`, the text of each of their tokens, since the viewer has no tokenizer.
The stream ends after the `done` event, or with `{"type": "error", "message", "code"}`.
"""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.requests import Request as HTTPRequest

from engine.errors import RequestError
from engine.events import MASKED, Step, to_json
from engine.request import Request
from engine.serve import sse
from engine.serve.body import parse
from engine.serve.errors import in_stream
from engine.serve.queue import EngineQueue, events


def routes(queue: EngineQueue, max_body: int) -> APIRouter:
    router = APIRouter()
    tok = queue.engine.tokenizer

    @lru_cache(maxsize=1 << 16)
    def text(token: int) -> str:
        return "" if token == MASKED else tok.decode([token])

    @router.post("/v1/denoise")
    async def denoise(client: HTTPRequest) -> StreamingResponse:
        request = await parse(client, max_body, Request)
        if request.prompt is not None and (request.prefix is not None or request.suffix is not None):
            raise RequestError("give prompt, or prefix and suffix, not both")
        job = queue.submit(request)  # validates the config

        async def frames():
            try:
                async for event in events(job, client):
                    data = to_json(event)
                    if isinstance(event, Step):
                        data["texts"] = [text(t) for t in event.tokens]
                    yield sse.frame(data)
            except Exception as e:  # the status line is sent: report in the stream
                error = in_stream(e)["error"]
                yield sse.frame({"type": "error", "message": error["message"], "code": error["code"]})

        return sse.response(frames())

    return router
