"""`nemodiff bench`: the JSON contract, losslessness and the transformers baseline, on the tiny model."""

from __future__ import annotations

import json
import re

import pytest

from nemodiff_tui.cli import main


def test_bench_json_has_every_mode_and_the_baseline(capsys, tiny_checkpoint):
    assert main(["bench", "--model", str(tiny_checkpoint), "--max-new-tokens", "6", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"device", "model", "results", "lossless"}
    assert set(report["results"]) == {
        "ar",
        "diffusion",
        "self-spec-linear",
        "self-spec-quadratic",
        "hf-generate",
    }
    for r in report["results"].values():
        assert {
            "tokens_per_second",
            "tokens_per_forward",
            "nfe",
            "prefill_passes",
            "n_tokens",
            "speedup_vs_ar",
        } <= set(r)
        assert r["n_tokens"] > 0 and r["tokens_per_second"] > 0
        assert r["prefill_passes"] == report["prompts"]  # one causal pass per (short) prompt, not in nfe
    for mode in ("self-spec-linear", "self-spec-quadratic"):
        r = report["results"][mode]
        hist = {int(k): v for k, v in r["accepted_histogram"].items()}
        assert sum(k * v for k, v in hist.items()) / sum(hist.values()) == r["mean_accepted_length"]
    confidence = report["results"]["diffusion"]["confidence_histogram"]
    assert len(confidence) == 10 and sum(confidence) >= report["results"]["diffusion"]["n_tokens"] - 1
    assert report["lossless"] == {"self-spec-linear": True, "self-spec-quadratic": True}
    assert report["parted_at_ties"] == {"self-spec-linear": 0, "self-spec-quadratic": 0}  # fp32: identical
    assert (
        report["hf_matches_ar"] is True and report["hf_parted_at_ties"] == 0
    )  # fp32: transformers' own greedy output
    assert report["results"]["ar"]["speedup_vs_ar"] == 1.0
    assert [p["name"] for p in report["profile"]] == ["ar", "block", "quadratic", "prefill"]


def test_bench_profile_times_each_pass_width_against_its_matmuls(capsys, tiny_checkpoint):
    assert main(["bench", "--model", str(tiny_checkpoint), "--profile", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    widths = {p["name"]: p["width"] for p in report["profile"]}
    assert widths == {
        "ar": 1,
        "block": 32,
        "quadratic": 32 * 33,
        "prefill": 256,
    }  # the tiny checkpoint: B = 32
    for p in report["profile"]:
        assert 0 < p["matmul_ms"] and 0 < p["pass_ms"] and p["overhead"] == p["pass_ms"] / p["matmul_ms"]
        assert 0 < p["floor_ms"] and p["floor_fraction"] == p["floor_ms"] / p["pass_ms"]
    # The floor's rate is the best the matmuls reached: every pass's matmuls at or above their
    # floor, the fastest exactly on it. The tiny model's weights sit in cache: wide passes are
    # bound by arithmetic, and the widest one's floor is above the AR step's.
    assert all(p["matmul_ms"] >= p["floor_ms"] * (1 - 1e-9) for p in report["profile"])
    assert min(p["matmul_ms"] / p["floor_ms"] for p in report["profile"]) == pytest.approx(1)
    by_name = {p["name"]: p for p in report["profile"]}
    assert (
        by_name["prefill"]["bound"] == "arithmetic"
        and by_name["prefill"]["floor_ms"] > by_name["ar"]["floor_ms"]
    )
    assert report["load_s"] > 0 and report["peak_rss_gb"] > 0
    assert main(["bench", "--model", str(tiny_checkpoint), "--profile", "--dtype", "int8"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\(int8, (own|fbgemm|weight-only) matmuls\)", out)
    assert "loaded in" in out and "peak RSS" in out and "| ar | 1 |" in out


def test_bench_block_size_sets_the_profiles_widths_and_the_modes_blocks(capsys, tiny_checkpoint):
    model = ["bench", "--model", str(tiny_checkpoint), "--block-size", "8", "--json"]
    assert main([*model, "--profile"]) == 0
    widths = {p["name"]: p["width"] for p in json.loads(capsys.readouterr().out)["profile"]}
    assert widths == {"ar": 1, "block": 8, "quadratic": 8 * 9, "prefill": 256}
    assert main([*model, "--max-new-tokens", "9", "--modes", "diffusion"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["block_size"] == 8 and report["results"]["diffusion"]["n_tokens"] > 0
    assert main(["bench", "--model", str(tiny_checkpoint), "--block-size", "1000", "--profile"]) == 2
    assert "block_size must lie in" in capsys.readouterr().err


def test_bench_table(capsys, tiny_checkpoint):
    assert main(["bench", "--model", str(tiny_checkpoint), "--max-new-tokens", "4", "--modes", "ar"]) == 0
    out = capsys.readouterr().out
    assert "| ar |" in out and "| hf-generate |" in out and "| diffusion |" not in out
    assert "confidence" not in out and "cycles by tokens accepted" not in out


def test_bench_table_shows_what_holds_each_mode_back(capsys, tiny_checkpoint):
    args = [
        "bench",
        "--model",
        str(tiny_checkpoint),
        "--max-new-tokens",
        "6",
        "--modes",
        "diffusion",
        "self-spec-linear",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "diffusion: masked slots by confidence at each denoising pass: 0.0+:" in out
    assert "self-spec-linear: cycles by tokens accepted (bonus included): " in out


def test_auto_is_benched_on_request_and_checked_for_losslessness(capsys, tiny_checkpoint):
    assert (
        main(["bench", "--model", str(tiny_checkpoint), "--max-new-tokens", "6", "--json", "--modes", "auto"])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert set(report["results"]) == {"ar", "auto", "hf-generate"}
    assert report["lossless"] == {"auto": True} and report["results"]["auto"]["n_tokens"] > 0


def test_warmup_rounds_run_every_prompt_untimed(tiny_checkpoint):
    """On a GPU the first pass over the prompts compiles Triton variants: it is run, then dropped."""
    import engine
    from engine.evaluation.mode_bench import prompts, run_bench

    eng = engine.load(str(tiny_checkpoint), device="cpu")
    seen = []
    eng.generate = lambda request, _generate=eng.generate: seen.append(request) or _generate(request)
    report = run_bench(eng, max_new_tokens=3, modes=["ar"], warmup_rounds=1)
    assert len(seen) == 1 + 2 * len(prompts())  # the one-prompt warm-up, then two rounds over the prompts
    assert report["results"]["ar"]["n_tokens"] <= 3 * len(prompts())  # only the timed round is counted
    assert report["results"]["hf-generate"]["n_tokens"] <= 3 * len(prompts())
