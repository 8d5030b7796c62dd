"""A remote engine: the Engine interface (`generate(Request)` -> events, `cancel()`) over HTTP,
for `--backend URL` against `nemodiff serve` or any OpenAI-compatible server such as SGLang.

Against `nemodiff serve` it reads /v1/denoise, so the caller gets the engine's own events,
denoising steps included. Against other servers it streams /v1/completions: a Note that steps
are not shown, one Commit per text chunk (without token ids) and a Done at the end.
Cancelling closes the connection, which cancels the generation on a nemodiff server.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from engine.decoding.engine import Generation
from engine.errors import NemodiffError, RequestError, first_line
from engine.events import OWNER, Commit, Done, Event, Note, Step
from engine.request import GenerationConfig, Request

TEXT_ONLY = "remote backend streams text only: denoising steps are not shown"
TIMEOUT_S = 60.0  # longest silence while waiting for the server (a queued request says nothing)
CONNECT_TIMEOUT_S = 5.0
EVENTS = {"note": Note, "step": Step, "commit": Commit, "done": Done}


def connect(url: str, api_key: str | None = None, timeout: float = TIMEOUT_S) -> RemoteEngine:
    """A RemoteEngine for the server at `url`, after asking its /v1/models for the model's name
    and whether it is `nemodiff serve`; a server without /v1/models is taken as text-only."""
    url = url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    client = httpx.Client(
        base_url=url, headers=headers, timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S)
    )
    try:
        model = _model_entry(url, client, timeout)
    except BaseException:
        client.close()  # a failed connect (retried from the app) must not leave its connections open
        raise
    return RemoteEngine(
        client, name=model.get("id") or url, nemodiff=model.get("owned_by") == OWNER, timeout=timeout
    )


def _model_entry(url: str, client: httpx.Client, timeout: float) -> dict:
    """The first entry of the server's /v1/models ({} for a server without that route)."""
    with http_errors(url, timeout):
        response = client.get("/v1/models")
    if response.status_code == 404:
        return {}
    check(response)
    try:
        models = response.json().get("data")
        return models[0] if isinstance(models[0], dict) else {}
    except (ValueError, AttributeError, TypeError, IndexError):
        raise NemodiffError(
            f"{url}/v1/models is not an OpenAI model list: is it OpenAI-compatible?"
        ) from None


@contextmanager
def http_errors(url: str, timeout: float) -> Iterator[None]:
    """Transport failures as one-line NemodiffErrors naming the server."""
    try:
        yield
    except httpx.ConnectError as e:
        raise NemodiffError(f"cannot connect to {url}: {first_line(e)}") from None
    except httpx.TimeoutException:
        raise NemodiffError(f"{url} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as e:
        raise NemodiffError(f"{url}: {type(e).__name__}: {first_line(e)}") from None


def check(response: httpx.Response) -> None:
    """Raise for a refusal (status 400 and up), with the server's own message."""
    url, status = str(response.request.url), response.status_code
    if status < 400:
        return
    response.read()
    try:
        refused = error_in(response.json())
    except ValueError:
        refused = None
    message = (
        refused[0]
        if refused
        else first_line(response.text)
        if response.text.strip()
        else response.reason_phrase
    )
    raise failure(status, f"{url}: HTTP {status}: {message}")


def error_in(data: object) -> tuple[str, int | None] | None:
    """Message and code of an error object: OpenAI's and ours `{"error": {...}}`, SGLang's
    `{"object": "error", ...}`, or /v1/denoise's `{"type": "error", ...}`; None for other data."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        message, code = error.get("message", error), error.get("code")
    elif error is not None:
        message, code = error, data.get("code")
    elif data.get("object") == "error" or data.get("type") == "error":
        message, code = data.get("message", data), data.get("code")
    else:
        return None
    return first_line(message), code if isinstance(code, int) else None


def failure(status: int | None, message: str) -> NemodiffError:
    """A 4xx (but 401) is the request's fault, a RequestError; the rest is the server's or the setup's."""
    hint = {401: " (check the API key)", 503: " (the server is busy: retry later)"}.get(status, "")
    bad_request = status is not None and 400 <= status < 500 and status != 401
    return (RequestError if bad_request else NemodiffError)(message + hint)


def from_json(data: dict) -> Event:
    """An event from its `to_json` form (fields the event does not have are ignored)."""
    cls = EVENTS.get(data.get("type"))
    if cls is None:
        raise NemodiffError(f"unexpected event from the server: {str(data)[:80]}")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        event = cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:  # a field missing
        raise NemodiffError(f"malformed event from the server: {str(data)[:80]}") from None
    if isinstance(event, Done):  # JSON object keys are strings
        event.accepted_histogram = {int(k): v for k, v in event.accepted_histogram.items()}
    return event


class RemoteTokenizer:
    """Token texts learned from the server's step events: what a denoising view decodes (the
    single ids of the steps it was sent); ids it never saw decode to ""."""

    special_ids: frozenset[int] = frozenset()  # unknown here; the server sends special tokens' text as ""

    def __init__(self):
        self.texts: dict[int, str] = {}

    def learn(self, ids: list[int], texts: list[str]) -> None:
        self.texts.update(zip(ids, texts))

    def decode(self, ids: list[int]) -> str:
        return "".join(self.texts.get(i, "") for i in ids)


class RemoteEngine:
    """The parts of Engine a caller uses (`generate`, `name`, `device`, `native`, `tokenizer`,
    `resolve_mode`), served by another machine."""

    device = "remote"
    native = False

    def __init__(self, client: httpx.Client, name: str, nemodiff: bool, timeout: float = TIMEOUT_S):
        self.client = client
        self.url = str(client.base_url).rstrip("/")
        self.name = name
        self.nemodiff = nemodiff  # True: /v1/denoise with every step; False: text chunks only
        self.timeout = timeout
        self.tokenizer = RemoteTokenizer()

    def generate(self, request: Request) -> Generation:
        return Generation(functools.partial(self._run, request))

    def resolve_mode(self, config: GenerationConfig) -> tuple[str, list[str]]:
        """The mode asked for (the server resolves "auto"; Done.mode says what ran)."""
        return (config.mode, []) if self.nemodiff else ("remote", [TEXT_ONLY])

    def _run(self, request: Request, cancelled: Callable[[], bool]) -> Iterator[Event]:
        request.config.validate()  # the same one-line errors as the local engine, before any I/O
        t0 = time.perf_counter()
        commits: list[Commit] = []
        events = self._denoise(request, cancelled) if self.nemodiff else self._completions(request, cancelled)
        for event in events:
            if isinstance(event, Commit):
                commits.append(event)
            yield event
            if isinstance(event, Done):
                return
        if not cancelled():
            raise NemodiffError(f"{self.url} closed the stream before the generation finished")
        text = "".join(c.text for c in commits)
        ids = [i for c in commits for i in c.token_ids]
        yield Done(
            text=text,
            token_ids=ids,
            n_tokens=commits[-1].n_tokens if commits else 0,
            nfe=0,
            tokens_per_forward=0.0,
            seconds=time.perf_counter() - t0,
            tokens_per_second=0.0,
            mode=request.config.mode,
            stop_reason="cancelled",
        )

    def _denoise(self, request: Request, cancelled: Callable[[], bool]) -> Iterator[Event]:
        for data in self._stream("/v1/denoise", dataclasses.asdict(request), cancelled):
            event = from_json(data)
            if isinstance(event, Step):
                self.tokenizer.learn(event.tokens, data.get("texts") or [])
            yield event

    def _completions(self, request: Request, cancelled: Callable[[], bool]) -> Iterator[Event]:
        """Text chunks of an OpenAI-style stream; n_tokens counts chunks until the server's usage
        gives the token count at the end."""
        config = request.config
        payload = {
            "model": self.name,
            "max_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "stop": config.stop or None,
            "seed": config.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.is_fim:  # an engine's raw text (nemodiff serve's rules off): the caller runs the pipeline
            payload.update(prompt=request.prefix or "", suffix=request.suffix, stop_rules=False)
        else:
            payload["prompt"] = request.prompt if request.prompt is not None else request.prefix or ""
        yield Note(TEXT_ONLY)
        t0 = time.perf_counter()
        text, chunks, finish, usage = "", 0, None, {}
        for data in self._stream("/v1/completions", payload, cancelled):
            usage = data["usage"] if isinstance(data.get("usage"), dict) else usage
            for choice in [c for c in data.get("choices") or [] if isinstance(c, dict)]:
                piece = choice.get("text")
                if isinstance(piece, str) and piece:
                    text, chunks = text + piece, chunks + 1
                    yield Commit(token_ids=[], text=piece, n_tokens=chunks)
                finish = choice.get("finish_reason") or finish
        if cancelled():
            return
        seconds = time.perf_counter() - t0
        n = usage.get("completion_tokens")
        n = n if isinstance(n, int) and n > 0 else chunks
        yield Done(
            text=text,
            token_ids=[],
            n_tokens=n,
            nfe=0,
            tokens_per_forward=0.0,
            seconds=seconds,
            tokens_per_second=n / seconds if seconds > 0 else 0.0,
            mode="remote",
            stop_reason="length" if finish == "length" else "eos",
            notes=[TEXT_ONLY],
        )

    def _stream(self, path: str, payload: dict, cancelled: Callable[[], bool]) -> Iterator[dict]:
        """The JSON objects of a server-sent-event stream, until `[DONE]`, its end, or a cancel
        (leaving closes the connection, so the server stops generating)."""
        with http_errors(self.url, self.timeout), self.client.stream("POST", path, json=payload) as response:
            check(response)
            for line in response.iter_lines():
                if cancelled():
                    return
                if not line.startswith("data:"):
                    continue
                body = line[5:].strip()
                if body == "[DONE]":
                    return
                try:
                    data = json.loads(body)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    raise NemodiffError(f"{self.url}{path} sent a malformed event: {body[:80]}")
                refused = error_in(data)
                if refused is not None:
                    raise failure(refused[1], f"{self.url}{path}: {refused[0]}")
                yield data
