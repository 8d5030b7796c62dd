"""A generation's record: frames for the denoising view, the ghost text's provisional tail."""

from __future__ import annotations

from engine.events import MASKED, Commit, Step
from nemodiff_tui.trace import Trace
from nemodiff_tui.widgets.denoise_view import cell_kinds, cell_text
from tests.tui.fake_engine import load_trace


def denoise(step: int, tokens, committed, commit_step, confidence=None) -> Step:
    n = len(tokens)
    return Step(
        "denoise", 0, step, step, list(tokens), list(committed), confidence or [0.95] * n, list(commit_step)
    )


def test_tail_shows_guesses_and_masks_after_the_committed_run():
    trace = Trace("diffusion")
    trace.add(denoise(1, [7, 8, MASKED, 9], [True, False, False, True], [0, -1, -1, 1]), ("a", "b", "", "d"))
    assert trace.tail() == [("b", False), ("", True), ("d", False)]
    trace.add(Commit([7], "a", 1))
    assert trace.text == "a" and trace.frames[-1].n_tokens == 1


def test_speculative_steps_count_accepted_lengths():
    trace = Trace("self-spec-linear")
    draft = Step(
        "draft", 0, 0, 1, [1, 2, 3], [True, False, False], [1, 0, 0], [0, -1, -1], drafted=[2, 3], accepted=1
    )
    verify = Step(
        "verify", 0, 0, 2, [1, 2, 3], [True, True, False], [1, 1, 0], [0, 0, -1], drafted=[2, 3], accepted=2
    )
    trace.add(draft, ("a", "b", "c"))
    assert trace.tail() == [("b", False), ("c", False)]
    trace.add(verify, ("a", "b", "c"))
    assert trace.tail() == [] and trace.accepted == [2]
    assert cell_kinds(draft) == ["committed", "drafted", "drafted"]
    assert cell_kinds(verify) == ["committed", "accepted", "rejected"]


def test_cell_kinds_of_a_denoising_step():
    step = denoise(
        3,
        [1, 2, MASKED, 4, 5],
        [True, True, False, False, True],
        [0, 3, -1, -1, 1],
        [1.0, 0.95, 0.0, 0.3, 0.2],
    )
    assert cell_kinds(step) == ["committed", "committed-now", "masked", "guess", "low-confidence"]
    assert cell_text("\n    ", masked=False).startswith("⏎␣␣␣␣")
    assert cell_text("\x1a", masked=False).strip() == "�"
    assert cell_text("anextremelylongtoken", masked=False).endswith("…")


def test_recorded_trace_replays_to_the_final_text():
    header, events = load_trace()
    trace = Trace(header["mode"])
    for event in events:
        trace.add(event, tuple(header["tokens"][i] if i >= 0 else "" for i in getattr(event, "tokens", [])))
    assert trace.done is not None and trace.text == trace.done.text
    assert trace.text.startswith("    if n < 2:\n")
    blocks = {f.step.block for f in trace.frames if f.step.kind == "denoise"}
    assert len(trace.frames) == trace.done.nfe + 1 + len(
        blocks
    )  # every pass, the prefill, each block's input
    first = next(i for i, f in enumerate(trace.frames) if f.step.kind == "denoise")
    masked = cell_kinds(trace.frames[first].step)  # the block as the model first sees it: masks
    assert masked[0] == "committed-now" and set(masked[1:]) == {"masked"}
    assert "masked" not in cell_kinds(trace.frames[first + 1].step)  # the pass's own output: guesses


def test_tail_ends_at_a_guessed_special_token():
    trace = Trace("diffusion", special_ids=frozenset({9}))
    trace.add(
        denoise(1, [7, 8, 9, 8], [True, False, False, False], [0, -1, -1, -1]), ("a", "b", "<eos>", "b")
    )
    assert trace.tail() == [("b", False)]


def test_copied_drafts_have_their_own_cells_and_count():
    trace = Trace("self-spec-linear")
    draft = Step(
        "draft",
        0,
        0,
        1,
        [1, 2, 3, 4],
        [True] + [False] * 3,
        [1, 0, 0, 0],
        [0, -1, -1, -1],
        drafted=[2, 3, 4],
        accepted=1,
        copied=2,
    )
    verify = Step(
        "verify",
        0,
        0,
        2,
        [1, 2, 3, 4],
        [True, True, False, False],
        [1, 1, 0, 0],
        [0, 0, -1, -1],
        drafted=[2, 3, 4],
        accepted=2,
        copied=2,
    )
    trace.add(draft, ("a", "b", "c", "d"))
    trace.add(verify, ("a", "b", "c", "d"))
    assert cell_kinds(draft) == ["committed", "copied", "copied", "drafted"]
    assert cell_kinds(verify) == ["committed", "copy-accepted", "rejected", "rejected"]
    assert trace.copies == (1, 2) and trace.frames[-1].copies == (1, 2) and trace.frames[0].copies == (0, 0)
