"""The HTTP app: the engine behind a bounded queue, served to editors (/infill), OpenAI clients
(/v1/completions, /v1/chat/completions, /v1/models) and remote viewers (/v1/denoise), plus an
open /health."""

from __future__ import annotations

import hmac
import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException
from starlette.requests import Request as HTTPRequest

from engine.decoding.engine import Engine
from engine.request import MODES
from engine.serve import chat, denoise, infill, openai
from engine.serve.errors import HANDLED, error_response
from engine.serve.queue import MAX_QUEUE, EngineQueue

MAX_BODY = 2 * 1024 * 1024  # bytes; llama.vim's full context ring is about 100 kB
log = logging.getLogger("nemodiff.serve")


def bearer(api_key: str):
    """A dependency that refuses requests without `Authorization: Bearer <api_key>` (the scheme
    in any case, as HTTP has it), and logs each refusal: editor plugins show nothing for a 401."""
    expected = api_key.encode()

    async def check(client: HTTPRequest) -> None:
        scheme, _, given = client.headers.get("authorization", "").partition(" ")
        if not (scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)):
            peer = f"{client.client.host}:{client.client.port}" if client.client else "unknown client"
            log.warning(
                "refused %s %s from %s: %s API key",
                client.method,
                client.url.path,
                peer,
                "wrong" if scheme or given else "no",
            )
            raise HTTPException(
                401,
                "missing or wrong API key: send Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


def create_app(
    engine: Engine,
    mode: str = "auto",
    api_key: str | None = None,
    max_queue: int = MAX_QUEUE,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """An app serving `engine`; `mode` is the decoding mode for clients that cannot name one
    (/infill, /v1/completions)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    queue = EngineQueue(engine, max_queue)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        queue.close()

    app = FastAPI(title="nemodiff", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.queue = queue
    app.state.mode = mode
    for exc in (*HANDLED, Exception):
        app.add_exception_handler(exc, error_response)
    guarded = [Depends(bearer(api_key))] if api_key else []
    app.include_router(infill.routes(queue, mode, max_body), dependencies=guarded)
    app.include_router(openai.routes(queue, mode, max_body), dependencies=guarded)
    app.include_router(chat.routes(queue, mode, max_body), dependencies=guarded)
    app.include_router(denoise.routes(queue, max_body), dependencies=guarded)

    @app.api_route("/health", methods=["GET", "HEAD"])  # HEAD: load balancers' health checks
    async def health() -> dict:
        return {"status": "ok", "model": engine.name, "mode": mode, "queue": queue.size}

    return app
