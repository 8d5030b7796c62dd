"""OpenAI's legacy `POST /v1/completions` (with `suffix` for fill-in-the-middle, as Continue and
Twinny send it) and `GET /v1/models`, so OpenAI-compatible clients and nemodiff's own remote
backend can use the server; the same API SGLang serves. The options OpenAI shares between its
completion endpoints (`Options`) are served, or refused unless they would change nothing.

With a `suffix` the completion ends where the app's suggestion would (`engine.prompts.suggestion`),
unless the body says `"stop_rules": false`. A rule can take back text already generated (a loop
is only known rounds later), so a streamed suggestion arrives as one chunk once it is final.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.requests import Request as HTTPRequest

from engine.events import OWNER, Commit, Done
from engine.prompts.suggestion import Context, Pipeline
from engine.request import GenerationConfig, Request
from engine.serve import sse
from engine.serve.body import FieldError, parse
from engine.serve.errors import in_stream
from engine.serve.queue import CLIENT_GONE, EngineQueue, Job, events

Shape = Callable[[str, str | None], dict]  # (text, finish_reason) -> an answer object


class StreamOptions(BaseModel):
    include_usage: bool = False


class Options(BaseModel):
    """OpenAI's options common to completions and chat; null means the default, as OpenAI's
    clients send it."""

    max_tokens: int | None = None  # 16 for completions
    temperature: float | None = None  # 1.0
    top_p: float | None = None  # 1.0
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None  # only 1
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    model: str | None = None  # one model per server: any name is accepted
    user: str | None = None  # for the provider's abuse tracking: no effect here
    # Not implemented, so refused unless they would change nothing (0, {}).
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None

    def config(self, mode: str, max_tokens: int) -> GenerationConfig:
        """The generation config, `max_tokens` by default; 400 naming an option not served."""
        if self.n not in (None, 1):
            raise FieldError("n", f"n must be 1, got {self.n}")
        for name in ("presence_penalty", "frequency_penalty", "logit_bias"):
            if getattr(self, name):
                raise FieldError(name, f"{name} is not supported by this server (only 0 or null)")
        stop = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return GenerationConfig(
            mode=mode,
            max_new_tokens=max_tokens if self.max_tokens is None else self.max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            seed=self.seed,
            stop=stop,
        ).validate()


class CompletionBody(Options):
    prompt: str | list[str]
    suffix: str | None = None
    echo: bool | None = None  # refused when true, as are logprobs and best_of > 1: not served here
    logprobs: int | None = None
    best_of: int | None = None
    stop_rules: bool | None = None  # nemodiff's: with a suffix, false turns the editor's stop rules off


def to_request(body: CompletionBody, mode: str) -> Request:
    """The Request for a completions body: `prompt` is the prefix when a `suffix` is given."""
    for name, served in (
        ("echo", not body.echo),
        ("logprobs", body.logprobs is None),
        ("best_of", body.best_of in (None, 1)),
    ):
        if not served:
            raise FieldError(name, f"{name} is not supported by this server")
    prompts = body.prompt if isinstance(body.prompt, list) else [body.prompt]
    if len(prompts) != 1:
        raise FieldError("prompt", f"prompt must be one string, got a list of {len(prompts)}")
    config = body.config(mode, max_tokens=16)
    if body.suffix is None:
        return Request(prompt=prompts[0], config=config)
    return Request(prefix=prompts[0], suffix=body.suffix, config=config)


def pipeline_for(request: Request, body: CompletionBody) -> Pipeline | None:
    """The suggestion pipeline of a fill-in-the-middle request, unless the body turns it off."""
    if not request.is_fim or body.stop_rules is False:
        return None
    return Pipeline(Context.around(request.prefix or "", request.suffix))


def finish_reason(done: Done, pipeline: Pipeline | None = None) -> str:
    return "length" if done.stop_reason == "length" and not (pipeline and pipeline.final) else "stop"


def usage(done: Done) -> dict:
    prompt = len(done.prompt_token_ids)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": done.n_tokens,
        "total_tokens": prompt + done.n_tokens,
    }


def routes(queue: EngineQueue, mode: str, max_body: int) -> APIRouter:
    router = APIRouter()
    model = queue.engine.name

    card = {"id": model, "object": "model", "created": 0, "owned_by": OWNER}

    @router.api_route("/v1/models", methods=["GET", "HEAD"])
    async def models() -> dict:
        return {"object": "list", "data": [card]}

    @router.api_route("/v1/models/{name:path}", methods=["GET", "HEAD"])
    async def model_card(name: str) -> dict:
        if name != model:
            raise HTTPException(404, f"model {name!r} not found: this server serves {model!r}")
        return card

    @router.post("/v1/completions")
    async def completions(client: HTTPRequest) -> Response:
        body = await parse(client, max_body, CompletionBody)
        request = to_request(body, mode)
        pipeline = pipeline_for(request, body)
        job = queue.submit(pipeline.request(request.config) if pipeline else request, pipeline)
        cid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(text: str, reason: str | None) -> dict:
            return {
                "id": cid,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": reason}],
            }

        return await answer(job, client, body, chunk, chunk, pipeline)

    return router


async def answer(
    job: Job, client: HTTPRequest, body: Options, chunk: Shape, whole: Shape, pipeline: Pipeline | None = None
) -> Response:
    """The job's answer in OpenAI's shape, one JSON object or a stream: `whole(text, reason)` and
    `chunk(delta, reason)` give the object of a whole answer and of a stream's event. With a
    suggestion `pipeline` the text is its suggestion, streamed as one chunk once final."""
    if not body.stream:
        done = None
        async for event in events(job, client):
            if isinstance(event, Done):
                done = event
        if done is None:
            return Response(status_code=CLIENT_GONE)
        text = pipeline.suggestion if pipeline else done.text
        return JSONResponse({**whole(text, finish_reason(done, pipeline)), "usage": usage(done)})

    async def frames():
        try:
            async for event in events(job, client):
                if isinstance(event, Commit) and event.text and not pipeline:
                    yield sse.frame(chunk(event.text, None))
                elif isinstance(event, Done):
                    if pipeline and pipeline.suggestion:
                        yield sse.frame(chunk(pipeline.suggestion, None))
                    yield sse.frame(chunk("", finish_reason(event, pipeline)))
                    if body.stream_options and body.stream_options.include_usage:
                        yield sse.frame({**chunk("", None), "choices": [], "usage": usage(event)})
            yield sse.frame(sse.DONE)
        except Exception as e:  # the status line is sent: report in the stream
            yield sse.frame(in_stream(e))

    return sse.response(frames())
