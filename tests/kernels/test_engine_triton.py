"""The whole engine on Triton kernels (CPU interpreter): every mode generates the same tokens
as the torch path on the tiny random checkpoint."""

from __future__ import annotations

import pytest

import engine
from engine import GenerationConfig, Request
from kernels.dispatch import using

MODES = [
    dict(mode="ar"),
    dict(mode="diffusion", threshold=0.3),
    dict(mode="self-spec", speculation="linear"),
    dict(mode="self-spec", speculation="quadratic"),
]


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return engine.load(str(tiny_checkpoint), device="cpu")


@pytest.mark.parametrize("mode", MODES, ids=lambda m: "-".join(str(v) for v in m.values()))
def test_triton_engine_matches_torch(tiny, mode, monkeypatch):
    import kernels.attention
    import kernels.token_select

    calls = []
    for module, name in (
        (kernels.attention, "attention_triton"),
        (kernels.token_select, "argmax_confidence_triton"),
    ):
        real = getattr(module, name)
        monkeypatch.setattr(
            module, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k)
        )
    request = Request(
        prompt="def forward(self, x", config=GenerationConfig(max_new_tokens=6, block_size=4, **mode)
    )
    with using("torch"):
        expected = tiny.complete(request)
    tiny.runner.crop(0)
    with using("triton"):
        got = tiny.complete(request)
    assert got.token_ids == expected.token_ids and got.nfe == expected.nfe
    assert {"attention_triton", "argmax_confidence_triton"} <= set(calls)  # the Triton path really ran
