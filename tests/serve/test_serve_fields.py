"""One policy for request fields on every endpoint: served, accepted because they only tune the
server, or refused by name (400); OpenAI's error object; GET /v1/models/{id}."""

from __future__ import annotations

import httpx
import pytest

from tests.serve.test_serve_infill import LLAMA_VIM


def error(r: httpx.Response, param: str) -> str:
    assert r.status_code == 400, r.text
    body = r.json()["error"]
    assert body["param"] == param and body["type"] == "invalid_request_error" and body["code"] == 400
    return body["message"]


@pytest.mark.parametrize(
    "path,body,unsupported",
    [
        ("/infill", {"input_prefix": "x", "grammar": "root ::= [a-z]+", "min_p": 0.05}, ["grammar", "min_p"]),
        (
            "/infill",
            {"input_prefix": "x", "json_schema": {}, "n_probs": 3, "repeat_penalty": 1.1},
            ["json_schema", "n_probs", "repeat_penalty"],
        ),
        ("/infill", {"input_prefix": "x", "lora": [{"id": 0, "scale": 0.5}]}, ["lora"]),
        (
            "/infill",
            {"input_prefix": "x", "input_extra": [{"text": "a", "filenmae": "b"}]},
            ["input_extra.0.filenmae"],
        ),
        ("/v1/completions", {"prompt": "x", "top_k": 5}, ["top_k"]),
        (
            "/v1/completions",
            {"prompt": "x", "stream_options": {"include_usage": True, "extra": 1}},
            ["stream_options.extra"],
        ),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": []}, ["tools"]),
        ("/v1/denoise", {"prompt": "x", "config": {"max_tokens": 3}}, ["config.max_tokens"]),
        ("/v1/denoise", {"promt": "x"}, ["promt"]),
    ],
)
def test_fields_that_are_not_served_are_refused_by_name(server, path, body, unsupported):
    message = error(httpx.post(f"{server}{path}", json=body, timeout=30), unsupported[0])
    assert message.startswith("unsupported field") and all(name in message for name in unsupported)


def test_fields_that_only_tune_the_server_are_accepted(server):
    tuning = {"cache_prompt": False, "t_max_prompt_ms": 1, "samplers": ["top_p", "top_k"], "id_slot": 0}
    r = httpx.post(f"{server}/infill", json={**LLAMA_VIM, **tuning}, timeout=30)
    assert r.status_code == 200, r.text


def test_more_than_one_infill_completion_is_refused(server):
    assert "1 completion" in error(httpx.post(f"{server}/infill", json={"n_cmpl": 3}, timeout=30), "n_cmpl")


@pytest.mark.parametrize(
    "name,value", [("presence_penalty", 1.5), ("frequency_penalty", -0.5), ("logit_bias", {"42": 5})]
)
def test_openai_penalties_and_logit_bias_are_refused_unless_neutral(server, name, value):
    body = {"prompt": "x", "max_tokens": 2}
    assert name in error(httpx.post(f"{server}/v1/completions", json={**body, name: value}, timeout=30), name)
    neutral = {"logit_bias": {}}.get(name, 0)
    assert httpx.post(f"{server}/v1/completions", json={**body, name: neutral}, timeout=30).status_code == 200


def test_openai_wrong_types_are_400_with_the_error_object(server):
    r = httpx.post(f"{server}/v1/completions", json={"prompt": "x", "max_tokens": "four"}, timeout=30)
    assert error(r, "max_tokens").startswith("max_tokens: ")
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_a_model_by_id(server, serve_engine):
    card = httpx.get(
        f"{server}/v1/models/{serve_engine.name}"
    ).json()  # a path: its slashes are part of the id
    assert card == httpx.get(f"{server}/v1/models").json()["data"][0] and card["id"] == serve_engine.name
    r = httpx.get(f"{server}/v1/models/gpt-4")
    assert r.status_code == 404 and "gpt-4" in r.json()["error"]["message"]
