"""The remote backend against `nemodiff serve`: the local engine's text, steps, cancel, errors."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

import engine
from engine import Commit, Done, GenerationConfig, NemodiffError, Note, Request, RequestError, Step
from engine.decoding.remote import TEXT_ONLY, connect
from engine.serve.app import create_app
from tests.serve.util import serving, wait_for


@pytest.fixture(scope="module")
def local(tiny_checkpoint):
    """A second copy of the server's model, generating in this process."""
    return engine.load(str(tiny_checkpoint), device="cpu")


def requests(mode: str) -> list[Request]:
    config = GenerationConfig(mode=mode, max_new_tokens=20, temperature=0.0)
    return [
        Request(prompt="def fibonacci(n):\n    ", config=config),
        Request(prefix="class Stack:\n    def push(self, x):\n        ", suffix="\n", config=config),
    ]


@pytest.mark.parametrize("mode", ["ar", "self-spec"])
def test_remote_gives_the_local_text_and_steps(server, local, mode):
    remote = connect(server)
    assert remote.nemodiff and remote.name == local.name and remote.device == "remote" and not remote.native
    for request in requests(mode):
        wanted = list(local.generate(request))
        events = list(remote.generate(request))
        done, want = events[-1], wanted[-1]
        assert isinstance(done, Done) and done.text == want.text and done.token_ids == want.token_ids
        assert done.mode == want.mode and done.nfe == want.nfe
        steps = [(e.kind, e.tokens) for e in events if isinstance(e, Step)]
        assert steps == [(e.kind, e.tokens) for e in wanted if isinstance(e, Step)]
        ids = [t for _, tokens in steps for t in tokens if t >= 0]
        assert [remote.tokenizer.decode([t]) for t in ids] == [local.tokenizer.decode([t]) for t in ids]


def test_text_only_servers_stream_commits_with_a_note(server, local):
    remote = connect(server)
    remote.nemodiff = False  # as against SGLang: /v1/completions, served here in the server's AR mode
    assert remote.resolve_mode(GenerationConfig()) == ("remote", [TEXT_ONLY])
    for request in requests("ar"):
        want = local.complete(request)
        events = list(remote.generate(request))
        assert isinstance(events[0], Note) and events[0].message == TEXT_ONLY
        commits = [e for e in events if isinstance(e, Commit)]
        assert all(c.token_ids == [] for c in commits) and not any(isinstance(e, Step) for e in events)
        done = events[-1]
        assert done.text == want.text == "".join(c.text for c in commits)
        assert done.n_tokens == want.n_tokens and done.stop_reason == want.stop_reason == "length"


@pytest.mark.parametrize("nemodiff", [True, False])
def test_cancel_stops_the_remote_generation(server, nemodiff):
    remote = connect(server)
    remote.nemodiff = nemodiff
    generation = remote.generate(Request(prompt="x", config=GenerationConfig(mode="ar", max_new_tokens=4000)))
    seen = 0
    for event in generation:
        seen += 1
        if seen == 6:
            generation.cancel()
    assert isinstance(event, Done) and event.stop_reason == "cancelled" and seen < 12
    assert wait_for(lambda: httpx.get(f"{server}/health").json()["queue"] == 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_one_line():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NemodiffError, match=f"cannot connect to {url}") as e:
        connect(url)
    assert "\n" not in str(e.value)


def test_a_failed_connect_closes_its_client(monkeypatch):
    import httpx

    closed, close = [], httpx.Client.close
    monkeypatch.setattr(httpx.Client, "close", lambda self: (closed.append(self), close(self))[1])
    with pytest.raises(NemodiffError):
        connect(f"http://127.0.0.1:{free_port()}")
    assert len(closed) == 1


def test_a_silent_server_times_out():
    with socket.socket() as listener:  # accepts connections (kernel backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(NemodiffError, match="did not answer within 0.3 s"):
            connect(url, timeout=0.3)


def test_http_errors_carry_the_servers_message(serve_engine):
    with serving(create_app(serve_engine, api_key="k", max_body=200)) as url:
        with pytest.raises(NemodiffError, match="HTTP 401.*check the API key") as e:
            connect(url)
        assert not isinstance(e.value, RequestError)
        remote = connect(url, api_key="k")
        with pytest.raises(RequestError, match="HTTP 413: request body is larger than 200 bytes"):
            list(remote.generate(Request(prompt="x" * 500)))
        with pytest.raises(RequestError, match="max_new_tokens must be positive"):
            list(remote.generate(Request(prompt="x", config=GenerationConfig(max_new_tokens=0))))


def test_a_foreign_server_without_models_is_text_only():
    """An OpenAI-compatible server that is not nemodiff (as SGLang): chunks, usage, then an error."""
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    foreign = FastAPI()
    sent = []

    @foreign.post("/v1/completions")
    async def completions(body: dict):
        sent.append(body)
        chunks = [
            {"choices": [{"index": 0, "text": "ab", "finish_reason": None}]},
            {"choices": [{"index": 0, "text": "c", "finish_reason": "length"}]},
            {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
        ]
        if body["max_tokens"] == 99:
            chunks = [{"object": "error", "message": "context too long", "code": 400}]
        frames = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
        return StreamingResponse(iter(frames), media_type="text/event-stream")

    with serving(foreign) as url:
        remote = connect(url)
        assert not remote.nemodiff and remote.name == url
        events = list(
            remote.generate(Request(prefix="x = ", suffix="\n", config=GenerationConfig(max_new_tokens=2)))
        )
        assert [type(e) for e in events] == [Note, Commit, Commit, Done]
        done = events[-1]
        assert (done.text, done.n_tokens, done.stop_reason, done.token_ids) == ("abc", 2, "length", [])
        assert sent[0]["prompt"] == "x = " and sent[0]["suffix"] == "\n" and sent[0]["stream"] is True
        with pytest.raises(RequestError, match="context too long"):
            list(remote.generate(Request(prompt="x", config=GenerationConfig(max_new_tokens=99))))
