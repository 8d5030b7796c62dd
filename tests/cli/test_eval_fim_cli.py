"""`nemodiff eval-fim` on a few built-in holes, and the held-out hole builder."""

from __future__ import annotations

import json

import pytest

from engine.evaluation.fim_quality import NEAR_CHARS, NEAR_RATIO, Score, edit_similarity, make_holdout
from engine.prompts.stop_rules import cut
from nemodiff_tui.cli import main

HOLES = [
    {"prefix": "def add(a, b):\n    ", "suffix": "\n", "middle": "return a + b", "kind": "line"},
    {"prefix": "import o", "suffix": "\nimport sys\n", "middle": "s", "kind": "span"},
    {
        "prefix": "for i in range(3):\n    ",
        "suffix": "\nprint('done')\n",
        "middle": "x = i\n    print(x)",
        "kind": "block",
    },
]


@pytest.fixture
def holes_file(tmp_path):
    path = tmp_path / "holes.jsonl"
    path.write_text("".join(json.dumps(h) + "\n" for h in HOLES))
    return path


def test_json_for_one_mode(capsys, tiny_checkpoint, holes_file):
    assert (
        main(
            [
                "eval-fim",
                str(holes_file),
                "--model",
                str(tiny_checkpoint),
                "--mode",
                "diffusion",
                "--block-size",
                "4",
                "--json",
            ]
        )
        == 0
    )
    r = json.loads(capsys.readouterr().out)
    always = {
        "mode",
        "n",
        "exact_match",
        "edit_similarity",
        "tokens_per_forward",
        "nfe",
        "prefill_passes",
        "tokens_per_second",
    }
    copies = {"copy_drafted", "copy_accepted", "copy_acceptance"}  # where the holes gave a copy to draft
    assert set(r) in (always, always | copies)
    assert (
        r["mode"] == "diffusion" and r["n"] == 3 and r["prefill_passes"] == 3
    )  # apart from nfe, as the reference counts
    assert 0 <= r["exact_match"] <= 1 and 0 <= r["edit_similarity"] <= 1 and r["tokens_per_forward"] >= 1


def test_every_mode_with_limit(capsys, tiny_checkpoint, holes_file):
    assert main(["eval-fim", str(holes_file), "--model", str(tiny_checkpoint), "--limit", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["mode"] for r in out] == ["ar", "diffusion", "self-spec"] and all(r["n"] == 2 for r in out)
    assert "speedup_vs_ar" not in out[0] and all(r["speedup_vs_ar"] > 0 for r in out[1:])
    assert (
        out[2]["matches_ar"] is True and "matches_ar" not in out[1]
    )  # fp32: self-spec writes what AR writes
    assert out[2]["ar_tokens_per_forward"] > 0 and "ar_tokens_per_forward" not in out[1]


def test_copy_acceptance_is_reported_apart(capsys, tiny_checkpoint, tmp_path):
    """A hole whose answer repeats its prefix: self-spec drafts copies, and the report counts them."""
    path = tmp_path / "repeat.jsonl"
    prefix = "x = 1\ny = 2\n" * 4
    path.write_text(json.dumps({"prefix": prefix, "suffix": "\n", "middle": "x = 1", "kind": "line"}) + "\n")
    assert main(["eval-fim", str(path), "--model", str(tiny_checkpoint), "--modes", "ar", "self-spec"]) == 0
    out = capsys.readouterr().out
    assert (
        "copies accepted" in out
        and "equal to AR" in out
        and "x AR's speed)" in out
        and "AR's tokens over its forwards" in out
    )


def test_bad_holes_file_is_one_line(capsys, tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prefix": "x"}\n')
    assert main(["eval-fim", str(bad), "--model", str(tiny_checkpoint)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


def test_scoring_ignores_trailing_whitespace():
    from engine.events import Done

    done = Done(
        text="",
        token_ids=[],
        n_tokens=4,
        nfe=2,
        tokens_per_forward=2,
        seconds=0.1,
        tokens_per_second=40,
        mode="ar",
        stop_reason="eos",
    )
    s = Score()
    s.add(HOLES[0], "return a + b  ", done)
    s.add(HOLES[0], "return a - b", done)
    assert s.summary("ar")["exact_match"] == 0.5 and s.summary("ar")["tokens_per_forward"] == 2
    assert edit_similarity("abc", "abc") == 1.0 and edit_similarity("abc", "xyz") == 0.0


def test_block_stop_rules():
    text = "x = 1\n    y = 2\nz = 3\n"
    assert cut(text, min_indent=4) == ("x = 1\n    y = 2", True)
    assert cut("a\n\n    b\n", min_indent=4) == ("a\n\n    b\n", False)  # blank lines never stop
    assert cut("a\nb\nc\nd", max_lines=2) == ("a\nb", True)


def test_edit_holes_are_lines_with_a_near_duplicate_just_above():
    from engine.evaluation.fim_quality import _edit_holes, _line_holes

    far = "    y = compute_something_else(x)\n" * (NEAR_CHARS // 30)  # pushes the first branch out of reach
    text = (
        "def f(x):\n    if x == 1:\n        return 'one'\n    elif x == 2:\n        return 'two'\n"
        + far
        + "    elif x == 3:\n"
    )
    holes = _edit_holes(_line_holes("m.py", text))
    assert {h["middle"]: h["near"] for h in holes} == {
        "elif x == 2:": "if x == 1:",
        "return 'two'": "return 'one'",
    }
    assert all(h["kind"] == "line" and h["middle"] in text for h in holes)


def test_holdout_is_deterministic_and_held_out():
    from engine.evaluation.corpus import HOLDOUT

    a, b = make_holdout(5, seed=1), make_holdout(5, seed=1, kinds=("line", "span", "block", "edit"))
    assert a == b[:15] and len(a) == 15 and all(h.get("near") for h in b[15:]) and len(b) == 20
    for hole in a:
        top = hole["source"].split("/")[0].removesuffix(".py")
        name = (
            hole["source"].split("/")[1].removesuffix(".py").removeprefix("test_") if top == "test" else top
        )
        assert name in HOLDOUT
        assert hole["kind"] in ("line", "span", "block") and hole["middle"].strip()
        assert "near" not in hole or edit_similarity(hole["near"], hole["middle"]) >= NEAR_RATIO
