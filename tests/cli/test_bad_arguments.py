"""Bad arguments to any command: one line on stderr and exit 2, and nothing written."""

from __future__ import annotations

import pytest

from nemodiff_tui.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--repeats", "0"],
        ["bench", "--modes", "bogus"],
        ["serve", "--port", "70000"],
        ["eval-fim", "holes.jsonl", "--limit", "-1"],
        ["eval-fim", "--make-holdout", "h.jsonl", "--per-kind", "-5"],
    ],
)
def test_out_of_range_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "error: argument" in capsys.readouterr().err


def test_unusable_inputs_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.json").write_text("{}")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    for argv, message in [
        (["complete", "--device", "tpu", "--prompt", "x"], "unknown device 'tpu'"),
        (["random-checkpoint", str(tmp_path / "taken")], "is not a new or empty directory: nothing written"),
        (["random-checkpoint", ""], "is not a new or empty directory"),
        (["eval-fim", str(tmp_path / "empty.jsonl")], "no holes to evaluate"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, argv
    assert (tmp_path / "taken" / "config.json").read_text() == "{}"


@pytest.mark.parametrize("argv", [["--bogus"], ["a.py", "--mode", "x"], ["complete", "--top-k", "x"]])
def test_a_bad_flag_is_one_line(argv: list[str], capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "error:" in err and "--help" in err


@pytest.mark.parametrize("argv", [["complete", "--prompt", ""], ["complete", "--prefix", "", "--suffix", ""]])
def test_complete_with_nothing_to_complete_fails(argv: list[str], capsys):
    assert main(argv) == 2
    assert "nothing to" in capsys.readouterr().err
