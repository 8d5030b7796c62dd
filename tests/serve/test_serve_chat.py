"""POST /v1/chat/completions: the tokenizer's chat template in every mode, streamed as the other
endpoints stream; a checkpoint without a template gets one clear 400."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

import engine
from engine.serve.app import create_app
from tests.serve.util import serving, sse

# A ChatML-like template over the random checkpoint's own control tokens.
TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)
MESSAGES = [{"role": "system", "content": "Answer in Python."}, {"role": "user", "content": "Add a and b."}]


@pytest.fixture(scope="module")
def chat_engine(tiny_checkpoint, tmp_path_factory):
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path_factory.mktemp("chat") / "c")
    config = json.loads((ckpt / "tokenizer_config.json").read_text())
    (ckpt / "tokenizer_config.json").write_text(json.dumps(config | {"chat_template": TEMPLATE}))
    return engine.load(str(ckpt), device="cpu")


def rendered(eng) -> list[int]:
    """The prompt the template gives, tokenized independently of the server."""
    text = "".join(f"<s>{m['role']}\n{m['content']}</s>\n" for m in MESSAGES) + "<s>assistant\n"
    return eng.tokenizer.hf.encode(text, add_special_tokens=False)


@pytest.mark.parametrize("mode", ["ar", "diffusion", "self-spec"])
def test_chat_uses_the_template_and_streams_the_same_answer(chat_engine, mode):
    body = {"model": "any", "messages": MESSAGES, "max_tokens": 12, "temperature": 0}
    with serving(create_app(chat_engine, mode=mode)) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 200, r.text
        whole = r.json()
        with httpx.stream(
            "POST",
            f"{url}/v1/chat/completions",
            json={**body, "stream": True, "stream_options": {"include_usage": True}},
            timeout=60,
        ) as s:
            assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
            events = sse(s.iter_lines())
    assert whole["object"] == "chat.completion" and whole["choices"][0]["message"]["role"] == "assistant"
    assert whole["usage"]["prompt_tokens"] == len(rendered(chat_engine))
    assert 0 < whole["usage"]["completion_tokens"] <= 12
    assert events[-1] == "[DONE]" and events[-2]["usage"] == whole["usage"] and events[-2]["choices"] == []
    chunks = events[:-2]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks) and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        == whole["choices"][0]["message"]["content"]
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]


def test_text_parts_are_joined_and_other_parts_refused(chat_engine):
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "Add "}, {"type": "text", "text": "a and b."}]}
    ]
    with serving(create_app(chat_engine, mode="ar")) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": parts, "max_tokens": 2}, timeout=60)
        image = [{"role": "user", "content": [{"type": "image_url", "text": None}]}]
        refused = httpx.post(f"{url}/v1/chat/completions", json={"messages": image}, timeout=60)
    want = chat_engine.tokenizer.chat_ids([{"role": "user", "content": "Add a and b."}])
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == len(want)
    assert refused.status_code == 400 and "image_url" in refused.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_without_a_chat_template_is_one_clear_400(server, stream):
    r = httpx.post(f"{server}/v1/chat/completions", json={"messages": MESSAGES, "stream": stream}, timeout=30)
    assert r.status_code == 400 and "no chat template" in r.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_conversation_longer_than_the_window_is_a_400_before_streaming(chat_engine, monkeypatch, stream):
    monkeypatch.setattr(chat_engine.model_config, "max_position_embeddings", 64)
    long = [{"role": "user", "content": "x = 1\n" * 100}]
    with serving(create_app(chat_engine, mode="ar")) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": long, "stream": stream}, timeout=60)
    assert r.status_code == 400 and "the conversation is" in r.json()["error"]["message"]


def test_a_conversation_the_template_refuses_is_a_400(chat_engine, monkeypatch):
    monkeypatch.setattr(
        chat_engine.tokenizer.hf,
        "chat_template",
        "{% if messages[0]['role'] != 'user' %}{{ raise_exception('start with a user turn') }}{% endif %}",
    )
    with serving(create_app(chat_engine, mode="ar")) as url:
        r = httpx.post(
            f"{url}/v1/chat/completions",
            json={"messages": [{"role": "assistant", "content": "hi"}]},
            timeout=60,
        )
    assert (
        r.status_code == 400
        and r.json()["error"]["message"]
        == "the chat template refused the conversation: start with a user turn"
    )
