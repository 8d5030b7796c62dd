"""POST /infill with the bodies llama.vim and llama.vscode send, and the editor stop rules on /infill and
/v1/completions with a suffix."""

from __future__ import annotations

import httpx
import pytest

from engine.prompts.suggestion import Rules
from tests.serve.util import sse

from engine.serve.infill import Chunk, InfillBody, extra_context, rules, select, to_request

CHUNKS = [{"text": "import os\n\ndef helper():\n    return os.getcwd()\n", "time": [1718, 420], "filename": "util.py"},
          {"text": "class Config:\n    debug = False\n", "time": [1718, 512], "filename": "config.py"}]
TIMINGS = ("prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second", "predicted_n", "predicted_ms",
           "predicted_per_token_ms", "predicted_per_second")

# llama.vim's completion request (autoload/llama.vim, llama#fim), with a small n_predict.
LLAMA_VIM = {
    "input_prefix": "import sys\n\ndef main(argv):\n",
    "input_suffix": "\n    return 0\n",
    "input_extra": CHUNKS,
    "prompt": "    args = ",
    "n_predict": 16,
    "n_indent": 4,
    "top_k": 40,
    "top_p": 0.99,
    "stream": False,
    "samplers": ["top_k", "top_p", "infill"],
    "cache_prompt": True,
    "t_max_prompt_ms": 500,
    "t_max_predict_ms": 1500,
    "response_fields": ["content", *(f"timings/{t}" for t in TIMINGS), "truncated", "tokens_cached"],
}

# llama.vim's ring-buffer update (s:ring_update): only warms the cache with the context chunks.
LLAMA_VIM_WARM = {
    "input_prefix": "", "input_suffix": "", "input_extra": CHUNKS, "prompt": "", "n_predict": 0,
    "temperature": 0.0, "stream": False, "samplers": [], "cache_prompt": True, "t_max_prompt_ms": 1,
    "t_max_predict_ms": 1, "response_fields": [""],
}

# llama.vscode's request (src/llama-server.ts, createRequestPayload): reads the nested response.
LLAMA_VSCODE = {
    "input_prefix": "function add(a, b) {\n",
    "input_suffix": "\n}\n",
    "input_extra": CHUNKS,
    "prompt": "  return ",
    "n_predict": 12,
    "top_k": 40,
    "top_p": 0.99,
    "stream": False,
    "samplers": ["top_k", "top_p", "infill"],
    "cache_prompt": True,
    "n_indent": 2,
    "t_max_prompt_ms": 500,
    "t_max_predict_ms": 2500,
    "lora": [{"id": 0, "scale": 0.5}],
}

# llama.vscode's cache warm-up (createRequestPayload with noPredict).
LLAMA_VSCODE_WARM = {
    "input_prefix": "", "input_suffix": "", "input_extra": CHUNKS, "prompt": "", "n_predict": 0, "samplers": [],
    "cache_prompt": True, "t_max_prompt_ms": 500, "t_max_predict_ms": 1,
}


def test_llama_vim_request_gets_flat_response_fields(server):
    r = httpx.post(f"{server}/infill", json=LLAMA_VIM, timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()
    assert set(data) == set(LLAMA_VIM["response_fields"])
    assert isinstance(data["content"], str) and data["truncated"] is False
    assert 0 < data["timings/predicted_n"] <= 16 and data["timings/prompt_n"] > 0


def test_warm_up_prefills_and_then_the_prompt_is_cached(server):
    r = httpx.post(f"{server}/infill", json=LLAMA_VIM_WARM, timeout=30)
    assert r.status_code == 200 and r.json() == {}  # response_fields [""] selects nothing
    full = httpx.post(f"{server}/infill", json=LLAMA_VSCODE_WARM, timeout=30).json()
    assert full["content"] == "" and full["timings"]["predicted_n"] == 0 and full["stop_type"] == "limit"
    assert full["tokens_cached"] > 0  # the second warm-up reused the first one's prefill


def test_llama_vscode_request(server):
    r = httpx.post(f"{server}/infill", json=LLAMA_VSCODE, timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()
    assert isinstance(data["content"], str) and data["stop_type"] in ("eos", "limit", "word")
    assert isinstance(data["tokens_cached"], int) and data["truncated"] is False
    assert set(TIMINGS) <= set(data["timings"])
    assert 0 < data["timings"]["predicted_n"] <= 12 and data["timings"]["prompt_n"] > 0


def test_the_prefix_is_context_then_lines_above_then_cursor_line():
    body = InfillBody(**LLAMA_VIM)
    request = to_request(body, "ar")
    assert request.prefix == extra_context(body.input_extra) + LLAMA_VIM["input_prefix"] + LLAMA_VIM["prompt"]
    assert request.prefix.startswith("--- util.py ---\nimport os") and request.suffix == LLAMA_VIM["input_suffix"]
    assert request.config.max_new_tokens == 16 and request.config.seed is None
    assert extra_context([Chunk(filename="a", text="x")]) == "--- a ---\nx\n\n"


def test_n_predict_zero_warms_and_negative_means_the_default():
    assert to_request(InfillBody(n_predict=0), "ar").config.max_new_tokens == 1
    assert to_request(InfillBody(n_predict=-1), "ar").config.max_new_tokens == 128


def test_response_fields_select_nested_values():
    response = {"content": "x", "timings": {"prompt_n": 3}, "truncated": False}
    assert select(response, ["content", "timings/prompt_n", "timings/nope", "missing"]) == \
        {"content": "x", "timings/prompt_n": 3}


def test_the_body_picks_the_rules():
    assert rules(InfillBody(**LLAMA_VIM)) == Rules(editor=True, n_indent=4, max_predict_s=1.5)
    assert rules(InfillBody(stop_rules=False, n_indent=-1, t_max_predict_ms=0)) == Rules(editor=False)


@pytest.fixture(scope="module")
def demo_server():
    """A server on the demo model, which writes real code: `path, 'rb') as f:` after `with open(`."""
    import engine
    from engine.serve.app import create_app
    from tests.serve.util import serving

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        with serving(create_app(engine.load("demo", device="cpu"), mode="ar")) as url:
            yield url


OPEN = {"input_prefix": "import os\n\ndef read(path):\n", "prompt": "    with open(", "input_suffix": ")\n",
        "n_predict": 16}


def test_infill_ends_before_the_bracket_right_of_the_cursor(demo_server):
    """The plugin inserted `inding)` before an existing `)`: the suggestion now ends before it."""
    on = httpx.post(f"{demo_server}/infill", json=OPEN, timeout=60).json()
    off = httpx.post(f"{demo_server}/infill", json={**OPEN, "stop_rules": False}, timeout=60).json()
    assert off["content"].startswith("path, 'rb')") and "\n" in off["content"]  # the raw completion
    assert on["content"] == "path, 'rb'" and on["stop_type"] == "limit"
    assert on["timings"]["predicted_n"] < off["timings"]["predicted_n"] == 16  # stopped at the bracket


def test_completions_with_a_suffix_apply_the_same_rules(demo_server):
    body = {"prompt": OPEN["input_prefix"] + OPEN["prompt"], "suffix": OPEN["input_suffix"], "max_tokens": 16,
            "temperature": 0}
    on = httpx.post(f"{demo_server}/v1/completions", json=body, timeout=60).json()
    off = httpx.post(f"{demo_server}/v1/completions", json={**body, "stop_rules": False}, timeout=60).json()
    assert on["choices"][0]["text"] == "path, 'rb'" and on["choices"][0]["finish_reason"] == "stop"
    assert off["choices"][0]["text"].startswith("path, 'rb')") and off["choices"][0]["finish_reason"] == "length"
    with httpx.stream("POST", f"{demo_server}/v1/completions", json={**body, "stream": True}, timeout=60) as r:
        chunks = sse(r.iter_lines())
    texts = [c["choices"][0]["text"] for c in chunks[:-1]]
    assert texts == ["path, 'rb'", ""] and chunks[-2]["choices"][0]["finish_reason"] == "stop"  # one chunk, final
