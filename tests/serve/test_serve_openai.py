"""OpenAI's /v1/completions (plain and FIM, streamed and not), /v1/models, /v1/denoise, /health."""

from __future__ import annotations

import httpx

from tests.serve.util import sse

# Continue's FIM request to an OpenAI-style /completions (core/llm/llms/Inception.ts, _streamFim):
# prompt + suffix, streamed; unset options are dropped by JSON.stringify; no key gives "Bearer undefined".
# A presence_penalty the user sets is refused (test_serve_fields.py).
CONTINUE = {
    "model": "nemodiff",
    "prompt": "def fibonacci(n):\n    if n < 2:\n        return n\n    return ",
    "suffix": "\n\nprint(fibonacci(10))\n",
    "max_tokens": 24,
    "temperature": 0.0,
    "stop": ["<|endoftext|>", "\n\n", "\n \n"],
    "stream": True,
}
CONTINUE_HEADERS = {"Accept": "application/json", "Authorization": "Bearer undefined"}


def stream(url: str, body: dict, headers: dict | None = None) -> list:
    with httpx.stream("POST", f"{url}/v1/completions", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return sse(r.iter_lines())


def test_continue_fim_request_streams_openai_chunks(server):
    events = stream(server, CONTINUE, CONTINUE_HEADERS)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "text_completion" and len(c["choices"]) == 1 for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert [c["choices"][0]["finish_reason"] for c in chunks][:-1] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_streamed_text_equals_the_plain_answer_and_usage_counts_tokens(server):
    body = {"prompt": "import os\nimport ", "suffix": "\n", "max_tokens": 12, "temperature": 0}
    plain = httpx.post(f"{server}/v1/completions", json=body, timeout=30).json()
    events = stream(server, {**body, "stream": True, "stream_options": {"include_usage": True}})
    usage = events[-2]
    assert usage["choices"] == [] and usage["usage"] == plain["usage"]
    assert "".join(e["choices"][0]["text"] for e in events[:-2]) == plain["choices"][0]["text"]
    assert plain["usage"]["completion_tokens"] <= 12 and plain["object"] == "text_completion"


def test_plain_prompt_stop_list_and_string(server):
    for stop in ("e", ["e", "a"]):
        r = httpx.post(
            f"{server}/v1/completions",
            json={"prompt": ["def f("], "max_tokens": 8, "stop": stop, "temperature": 0},
            timeout=30,
        )
        assert r.status_code == 200 and "e" not in r.json()["choices"][0]["text"]


def test_models_and_health(server, serve_engine):
    models = httpx.get(f"{server}/v1/models").json()
    assert models["data"][0]["id"] == serve_engine.name and models["data"][0]["owned_by"] == "nemodiff"
    assert httpx.get(f"{server}/health").json() == {
        "status": "ok",
        "model": serve_engine.name,
        "mode": "ar",
        "queue": 0,
    }


def test_denoise_streams_every_engine_event_with_token_texts(server, serve_engine):
    body = {
        "prefix": "def add(a, b):\n    ",
        "suffix": "\n",
        "config": {"mode": "diffusion", "block_size": 4, "max_new_tokens": 8},
    }
    with httpx.stream("POST", f"{server}/v1/denoise", json=body, timeout=30) as r:
        events = sse(r.iter_lines())
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "done" and {"step", "commit"} <= set(kinds)
    steps = [e for e in events if e["type"] == "step"]
    assert any(s["kind"] == "denoise" for s in steps)
    decode = serve_engine.tokenizer.decode
    assert all(s["texts"] == [decode([t]) if t >= 0 else "" for t in s["tokens"]] for s in steps)
    assert "".join(e["text"] for e in events if e["type"] == "commit") == events[-1]["text"]
