"""The bundled demo model: loads offline as `demo` and completes code in every mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import engine
from engine import GenerationConfig, Request
from engine.evaluation.lossless import parted_at_tie
from engine.loading.checkpoint import DEMO_DIR


@pytest.fixture(scope="module")
def demo(monkeypatch_module):
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    return engine.load("demo", device="cpu")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_shipped_checkpoint_is_small_nld_and_loads_offline(demo):
    config = json.loads((DEMO_DIR / "config.json").read_text())
    assert config["model_type"] == "nemotron_labs_diffusion"
    assert sum(f.stat().st_size for f in DEMO_DIR.rglob("*") if f.is_file()) <= 25 * 2**20
    assert demo.native and demo.fim_format is not None and demo.fim_format.name == "starcoder"
    assert demo.fim_format.spm == (config["fim_order"] == "spm")
    assert demo.default_block_size == config["block_size"]
    assert not list(DEMO_DIR.rglob("*.pt"))  # no training state ships
    assert demo.lora_loaded  # its self-spec draft adapter (linear_spec_lora/), as NLD's instruct checkpoints


@pytest.mark.parametrize(
    "mode",
    [
        dict(mode="ar"),
        dict(mode="diffusion"),
        dict(mode="self-spec"),
        dict(mode="self-spec", speculation="quadratic"),
    ],
    ids=str,
)
def test_every_mode_completes_a_function_body(demo, mode):
    done = demo.complete(
        Request(
            prefix="def add(a, b):\n    ", suffix="\n", config=GenerationConfig(max_new_tokens=16, **mode)
        )
    )
    assert done.n_tokens > 0 and done.text.strip()
    assert done.tokens_per_forward > 0


def test_self_spec_is_lossless_on_the_demo_model(demo):
    prompt = "import os\n\n\ndef list_files(root):\n    "
    ar = demo.complete(Request(prompt=prompt, config=GenerationConfig(mode="ar", max_new_tokens=40)))
    for speculation in ("linear", "quadratic"):
        spec = demo.complete(
            Request(
                prompt=prompt,
                config=GenerationConfig(mode="self-spec", speculation=speculation, max_new_tokens=40),
            )
        )
        assert spec.token_ids == ar.token_ids


def test_copy_drafts_are_accepted_and_lossless_on_held_out_editing_holes(demo):
    """The first holes of the committed editing benchmark and plain line holes: self-spec writes what
    AR writes (or parts only at a rounding tie) while copies of the context are drafted and accepted."""
    from engine.evaluation.fim_quality import fill, same_as_ar

    root = Path(__file__).parents[2] / "engine" / "evaluation"
    holes = [
        json.loads(line)
        for name, n in (("edit_holes.jsonl", 6), ("line_holes.jsonl", 3))
        for line in (root / name).read_text().splitlines()[:n]
    ]
    copied = accepted = 0
    for hole in holes:
        ar = fill(demo, hole, GenerationConfig(mode="ar"))
        for speculation in ("linear", "quadratic"):
            spec = fill(demo, hole, GenerationConfig(mode="self-spec", speculation=speculation))
            assert same_as_ar(demo, ar, spec), (speculation, hole["middle"], ar[0], spec[0])
            copied += spec[1].copy_drafted
            accepted += spec[1].copy_accepted
    assert 0 < accepted < copied


def test_self_spec_is_lossless_in_bf16_up_to_rounding_ties(monkeypatch_module):
    """bf16, the default on CPUs that multiply it natively: the 8-row verify pass and the 1-row AR
    pass round differently, so the outputs may part only where the AR choice was a rounding tie."""
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    eng = engine.load("demo", device="cpu", dtype="bf16")
    for prompt in (
        "import os\n\n\ndef list_files(root):\n    ",
        "class Stack:\n    def push(self, item):\n        ",
    ):
        ar = eng.complete(Request(prompt=prompt, config=GenerationConfig(mode="ar", max_new_tokens=48)))
        for speculation in ("linear", "quadratic"):
            spec = eng.complete(
                Request(
                    prompt=prompt,
                    config=GenerationConfig(mode="self-spec", speculation=speculation, max_new_tokens=48),
                )
            )
            assert parted_at_tie(eng, ar.prompt_token_ids, ar.token_ids, spec.token_ids)


def test_a_cursor_at_an_indentation_gets_code_as_the_whole_file_spells_it(demo):
    """The prompt keeps the indentation but its last space; the first token is that space and the
    start of the code (`" def"`), as in the finished file's tokens, and the user sees only the code."""
    prefix = "        self.assertRaises(TypeError, csv.register_dialect, [])\n\n    "
    tok = demo.tokenizer
    for mode in ("ar", "diffusion", "self-spec"):
        done = demo.complete(
            Request(prefix=prefix, suffix="\n", config=GenerationConfig(mode=mode, max_new_tokens=6))
        )
        first = tok.token_texts[done.token_ids[0]]
        assert first[0] == " " and first[1:2].strip(), (mode, first)
        assert tok.decode(done.token_ids)[1:].startswith(done.text) and not done.text[0].isspace(), (
            mode,
            done.text,
        )
