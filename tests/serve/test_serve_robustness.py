"""Bad input never crashes the server: 400 / 413 / 422 / 401 with one-line messages."""

from __future__ import annotations

import logging

import httpx
import pytest

from engine.serve.app import create_app
from tests.serve.util import serving, wait_for

KEY = "s3cret"
MAX_BODY = 64 * 1024
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def guarded(serve_engine):
    with serving(create_app(serve_engine, mode="ar", api_key=KEY, max_body=MAX_BODY)) as url:
        yield url


def post(url: str, path: str, **kw) -> httpx.Response:
    return httpx.post(f"{url}{path}", headers={**AUTH, **kw.pop("headers", {})}, timeout=30, **kw)


def message(r: httpx.Response) -> str:
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}  # OpenAI's error object
    assert error["code"] == r.status_code and "\n" not in error["message"]
    return error["message"]


@pytest.mark.parametrize("path", ["/infill", "/v1/completions", "/v1/denoise"])
def test_malformed_json_is_400(guarded, path):
    r = post(guarded, path, content=b'{"prompt": "x",', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in message(r)


@pytest.mark.parametrize(
    "path,body,param",
    [
        ("/infill", {"input_prefix": "x", "n_predict": "many"}, "n_predict"),
        ("/infill", {"input_extra": "not a list"}, "input_extra"),
        ("/infill", [1, 2], "body"),
        ("/v1/completions", {"prompt": 5}, "prompt"),
        ("/v1/completions", {"max_tokens": 4}, "prompt"),
        ("/v1/completions", {"prompt": "x", "stream": "sometimes"}, "stream"),
        ("/v1/chat/completions", {"messages": "hi"}, "messages"),
        ("/v1/denoise", {"prompt": "x", "config": {"max_new_tokens": [3]}}, "config.max_new_tokens"),
    ],
)
def test_wrong_types_are_400_naming_the_field(guarded, path, body, param):
    r = post(guarded, path, json=body)
    assert r.status_code == 400 and message(r).startswith(param) and r.json()["error"]["param"] == param


@pytest.mark.parametrize(
    "path,body,text",
    [
        ("/infill", {"input_prefix": "x", "temperature": -1}, "temperature"),
        ("/infill", {"input_prefix": "x", "stream": True}, "stream"),
        ("/v1/completions", {"prompt": "x", "n": 3}, "n must be 1"),
        ("/v1/completions", {"prompt": ["a", "b"]}, "one string"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 0}, "max_new_tokens"),
        ("/v1/denoise", {"prompt": "x", "config": {"mode": "fast"}}, "unknown mode"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 10**12}, "context window"),
        ("/infill", {"input_prefix": "x", "n_predict": 10**12}, "context window"),
        ("/v1/completions", {"prompt": "x", "temperature": 1e308}, "temperature must lie in"),
        ("/v1/completions", {"prompt": "x", "temperature": 0.5, "seed": 2**64}, "64-bit"),
        ("/v1/denoise", {"prompt": "x", "config": {"block_size": 10**9}}, "block_size must lie in"),
        ("/v1/completions", {"prompt": "x", "echo": True}, "echo is not supported"),
        ("/v1/completions", {"prompt": "x", "logprobs": 5}, "logprobs is not supported"),
        ("/v1/denoise", {"prompt": "a", "prefix": "b", "suffix": "c"}, "not both"),
    ],
)
def test_requests_the_engine_refuses_are_400(guarded, path, body, text):
    r = post(guarded, path, json=body)
    assert r.status_code == 400 and text in message(r)


def test_openai_nulls_mean_the_defaults(guarded):
    body = {
        "prompt": "x",
        "max_tokens": None,
        "temperature": None,
        "top_p": None,
        "n": None,
        "stream": None,
        "echo": None,
        "logprobs": None,
        "best_of": None,
        "seed": 1,
    }
    r = post(guarded, "/v1/completions", json=body)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 16


@pytest.mark.parametrize(
    "body,text",
    [
        (b'{"prompt": "a\\ud800b"}', "surrogate"),
        (b"[" * 5000, "nested too deeply"),
        (b'{"prompt": "\xff"}', "malformed JSON"),
    ],
)
def test_bodies_that_are_not_text_are_400(guarded, body, text):
    r = post(guarded, "/v1/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and text in message(r)


def test_oversized_bodies_are_413_by_length_and_by_bytes_received(guarded):
    big = b'{"prompt": "' + b"x" * MAX_BODY + b'"}'
    r = post(guarded, "/v1/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and str(MAX_BODY) in message(r)

    def chunked():  # no Content-Length: the limit applies to what arrives
        yield b'{"prompt": "'
        for _ in range(MAX_BODY // 4096 + 1):
            yield b"x" * 4096
        yield b'"}'

    r = post(guarded, "/infill", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
@pytest.mark.parametrize(
    "method,path",
    [("POST", "/infill"), ("POST", "/v1/completions"), ("POST", "/v1/denoise"), ("GET", "/v1/models")],
)
def test_requests_without_the_key_are_401(guarded, headers, method, path):
    r = httpx.request(method, f"{guarded}{path}", json={"prompt": "x"}, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "API key" in message(r)


def test_health_stays_open_and_the_server_survives_all_of_it(guarded):
    assert httpx.get(f"{guarded}/health").json()["status"] == "ok"
    r = post(guarded, "/v1/completions", json={"prompt": "x", "max_tokens": 3, "temperature": 0})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 3
    assert httpx.get(f"{guarded}/nowhere").status_code == 404
    assert httpx.head(f"{guarded}/health").status_code == 200  # load balancers check with HEAD
    models = httpx.head(f"{guarded}/v1/models", headers={"Authorization": f"bearer {KEY}"})  # any case
    assert models.status_code == 200


def test_a_refused_key_is_one_log_line_naming_the_client_and_endpoint(guarded, caplog):
    """Editor plugins show nothing for a 401: the server's log says who was refused, and where."""
    with caplog.at_level(logging.WARNING, logger="nemodiff.serve"):
        assert (
            httpx.post(f"{guarded}/infill", json={}, headers={"Authorization": "Bearer wrong"}).status_code
            == 401
        )
        assert wait_for(lambda: any(r.name == "nemodiff.serve" for r in caplog.records))
    lines = [r.getMessage() for r in caplog.records if r.name == "nemodiff.serve"]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "POST /infill" in lines[0] and "127.0.0.1:" in lines[0] and "wrong API key" in lines[0]
