"""llama.cpp's `POST /infill`: the contract llama.vim and llama.vscode speak, mapped onto a
fill-in-the-middle Request.

The FIM prefix is the context chunks from other files (`input_extra`), then the lines above
the cursor (`input_prefix`), then the cursor line up to the cursor (`prompt`); the suffix is
`input_suffix`. llama.cpp also puts the chunks first and `prompt` last; our Request has no slot
after the middle marker, so `prompt` closes the prefix, which is the same text in the same place.

The completion ends where the app's suggestion would (`engine.prompts.suggestion`: the block
dedenting, one line when text follows the cursor, the bracket already right of the cursor, a
loop), plus llama.cpp's `n_indent` and `t_max_predict_ms`; `"stop_rules": false` leaves only those.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.requests import Request as HTTPRequest

from engine.events import Done, Step
from engine.prompts.suggestion import Context, Pipeline, Rules
from engine.request import GenerationConfig, Request
from engine.serve.body import parse
from engine.serve.queue import CLIENT_GONE, EngineQueue, events

STOP_TYPES = {"eos": "eos", "stop": "word", "length": "limit", "cancelled": "limit"}


class Chunk(BaseModel):
    """Context from another file (llama.vim's ring buffer of recently used text)."""

    filename: str = "tmp"
    text: str = ""


class InfillBody(BaseModel):
    input_prefix: str = ""
    input_suffix: str = ""
    input_extra: list[Chunk] = []
    prompt: str = ""
    n_predict: int = -1  # 0: only prefill, to warm the cache; negative: the engine's default
    n_indent: int = 0
    t_max_predict_ms: int = 0  # 0 or negative: no time cap
    temperature: float = 0.0  # greedy unless asked: editors cache suggestions by context
    top_p: float = 1.0
    seed: int = -1  # negative: random
    stop: list[str] = []
    stop_rules: bool = True  # nemodiff's: false turns the editor's stop rules off (llama.cpp's stay)
    stream: bool = False
    response_fields: list[str] = []
    # Accepted for compatibility, without effect: the engine samples with temperature and top_p
    # only, always reuses the cached prompt prefix, and prefills the prompt in one pass.
    top_k: int = 40
    samplers: list[str] | str = []
    cache_prompt: bool = True
    t_max_prompt_ms: int = -1


def extra_context(chunks: list[Chunk]) -> str:
    """The chunks as plain text before the prefix (special tokens in user text stay text)."""
    return "".join(f"--- {c.filename} ---\n{c.text}{'' if c.text.endswith(chr(10)) else chr(10)}\n"
                   for c in chunks)


def to_request(body: InfillBody, mode: str) -> Request:
    """The Request for an /infill body; the config is validated here so bad values get a 400."""
    n = body.n_predict
    config = GenerationConfig(
        mode=mode, max_new_tokens=1 if n == 0 else n if n > 0 else GenerationConfig.max_new_tokens,
        temperature=body.temperature, top_p=body.top_p, seed=body.seed if body.seed >= 0 else None,
        stop=body.stop)
    prefix = extra_context(body.input_extra) + body.input_prefix + body.prompt
    return Request(prefix=prefix, suffix=body.input_suffix, config=config.validate())


def rules(body: InfillBody) -> Rules:
    """The stop rules an /infill body asks for: the editor's unless turned off, `n_indent` (end
    before the first later line indented less) and `t_max_predict_ms` (once a newline was
    generated, end when the prediction time is up)."""
    cap = body.t_max_predict_ms / 1000 if body.t_max_predict_ms > 0 else None
    return Rules(editor=body.stop_rules, n_indent=max(body.n_indent, 0), max_predict_s=cap)


def select(response: dict, fields: list[str]) -> dict:
    """llama.cpp's `response_fields`: only the named fields, a nested one named as "a/b"."""
    out = {}
    for path in fields:
        value = response
        for key in path.split("/"):
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
        else:
            out[path] = value
    return out


def response(body: InfillBody, pipeline: Pipeline, done: Done, prompt_s: float, model: str) -> dict:
    warm = body.n_predict == 0
    prompt_n = len(done.prompt_token_ids) - done.tokens_cached
    predicted_n = 0 if warm else done.n_tokens
    prompt_ms = prompt_s * 1000
    predicted_ms = max(done.seconds - prompt_s, 0.0) * 1000
    return {
        "content": "" if warm else pipeline.suggestion,
        "stop": True,
        "stop_type": "limit" if warm or pipeline.final else STOP_TYPES[done.stop_reason],
        "model": model,
        "tokens_predicted": predicted_n,
        "tokens_evaluated": prompt_n,
        "tokens_cached": done.tokens_cached,
        "truncated": done.truncated,
        "timings": {**rates("prompt", prompt_n, prompt_ms), **rates("predicted", predicted_n, predicted_ms)},
    }


def rates(what: str, n: int, ms: float) -> dict:
    """llama.cpp's timing fields for `n` tokens in `ms` milliseconds."""
    return {f"{what}_n": n, f"{what}_ms": ms, f"{what}_per_token_ms": ms / n if n else 0.0,
            f"{what}_per_second": n / ms * 1000 if ms > 0 else 0.0}


def routes(queue: EngineQueue, mode: str, max_body: int) -> APIRouter:
    router = APIRouter()

    @router.post("/infill")
    async def infill(client: HTTPRequest) -> Response:
        body = await parse(client, max_body, InfillBody)
        if body.stream:
            raise HTTPException(400, "stream is not supported on /infill: use /v1/completions with stream")
        request = to_request(body, mode)
        pipeline = Pipeline(Context.around(request.prefix, request.suffix), rules(body))
        job = queue.submit(pipeline.request(request.config), pipeline)
        prompt_s, done = 0.0, None
        async for event in events(job, client):
            if isinstance(event, Done):
                done = event
            if isinstance(event, Step) and event.kind == "prefill":
                prompt_s = event.elapsed
        if done is None:
            return Response(status_code=CLIENT_GONE)
        result = response(body, pipeline, done, prompt_s, queue.engine.name)
        return JSONResponse(select(result, body.response_fields) if body.response_fields else result)

    return router
