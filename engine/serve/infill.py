"""llama.cpp's `POST /infill`: the contract llama.vim and llama.vscode speak, mapped onto a
fill-in-the-middle Request.

The prompt is the context chunks from other files (`input_extra`, as the Request's `context`,
which gets a fixed share of the budget: engine/prompts/fim.py), then the FIM prefix: the lines above the
cursor (`input_prefix`) and the cursor line up to the cursor (`prompt`); the suffix is
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
from engine.request import ContextChunk, GenerationConfig, Request
from engine.serve.body import FieldError, parse
from engine.serve.queue import CLIENT_GONE, EngineQueue, events

STOP_TYPES = {"eos": "eos", "stop": "word", "length": "limit", "cancelled": "limit"}
RANDOM_SEED = 0xFFFFFFFF  # llama.cpp's LLAMA_DEFAULT_SEED: "pick a random seed"


class Chunk(BaseModel):
    """Context from another file (llama.vim's ring buffer of recently used text). llama.vim also
    sends when it saw the chunk (`time`), which only orders the ring: the list is oldest first."""

    filename: str = "tmp"
    text: str = ""
    time: list[float] | float | None = None


class InfillBody(BaseModel):
    input_prefix: str = ""
    input_suffix: str = ""
    input_extra: list[Chunk] = []
    prompt: str = ""
    n_predict: int = -1  # 0: only prefill, to warm the cache; negative: the engine's default
    n_indent: int = 0
    t_max_predict_ms: int = 0  # 0 or negative: no time cap
    temperature: float = 0.0  # greedy unless asked: editors cache suggestions by context
    top_k: int = 40  # llama.cpp's default; 0: off (only sampling, temperature > 0, uses it)
    top_p: float = 1.0
    seed: int = -1  # negative or RANDOM_SEED: random
    stop: list[str] = []
    stop_rules: bool = True  # nemodiff's: false turns the editor's stop rules off (llama.cpp's stay)
    stream: bool = False
    response_fields: list[str] = []
    n_cmpl: int = 1  # completions per request: only 1
    # Accepted without effect, as they only tune the server (docs/SERVING.md): the engine always
    # reuses the cached prompt prefix, prefills the prompt in one pass, applies temperature, top-k
    # and top-p in that order, and has one slot.
    samplers: list[str] | str = []
    cache_prompt: bool = True
    t_max_prompt_ms: int = -1
    id_slot: int = -1


def to_request(body: InfillBody, mode: str) -> Request:
    """The Request for an /infill body; the config is validated here so bad values get a 400. A
    warm-up (`n_predict: 0`) asks for the default length, so its prompt is the one the same request
    would build to complete (the handler stops it after the prefill)."""
    if body.n_cmpl != 1:
        raise FieldError(
            "n_cmpl", f"n_cmpl: this server gives 1 completion per request, asked for {body.n_cmpl}"
        )
    n = body.n_predict if body.n_predict > 0 else GenerationConfig.max_new_tokens
    random = body.seed < 0 or body.seed == RANDOM_SEED
    config = GenerationConfig(
        mode=mode,
        max_new_tokens=n,
        temperature=body.temperature,
        top_k=body.top_k,
        top_p=body.top_p,
        seed=None if random else body.seed,
        stop=body.stop,
    )
    context = [ContextChunk(c.filename, c.text) for c in body.input_extra]
    return Request(
        prefix=body.input_prefix + body.prompt,
        suffix=body.input_suffix,
        config=config.validate(),
        context=context,
    )


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
        "input_extra_used": {
            "chunks": done.context_chunks,
            "of": len(body.input_extra),
            "tokens": done.context_tokens,
        },
        "timings": {**rates("prompt", prompt_n, prompt_ms), **rates("predicted", predicted_n, predicted_ms)},
    }


def rates(what: str, n: int, ms: float) -> dict:
    """llama.cpp's timing fields for `n` tokens in `ms` milliseconds."""
    return {
        f"{what}_n": n,
        f"{what}_ms": ms,
        f"{what}_per_token_ms": ms / n if n else 0.0,
        f"{what}_per_second": n / ms * 1000 if ms > 0 else 0.0,
    }


def routes(queue: EngineQueue, mode: str, max_body: int) -> APIRouter:
    router = APIRouter()

    @router.post("/infill")
    async def infill(client: HTTPRequest) -> Response:
        body = await parse(client, max_body, InfillBody)
        if body.stream:
            raise HTTPException(400, "stream is not supported on /infill: use /v1/completions with stream")
        request = to_request(body, mode)
        pipeline = Pipeline(Context.around(request.prefix, request.suffix), rules(body))
        job = queue.submit(pipeline.request(request.config, request.context), pipeline)
        prompt_s, done = 0.0, None
        async for event in events(job, client):
            if isinstance(event, Done):
                done = event
            if isinstance(event, Step) and event.kind == "prefill":
                prompt_s = event.elapsed
                if body.n_predict == 0:  # a warm-up: the prompt is in the cache now
                    job.cancel()
        if done is None:
            return Response(status_code=CLIENT_GONE)
        result = response(body, pipeline, done, prompt_s, queue.engine.name)
        return JSONResponse(select(result, body.response_fields) if body.response_fields else result)

    return router
