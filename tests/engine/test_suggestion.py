"""The suggestion pipeline: one table of cursor situations, run through `Pipeline` as a generation
streams, and the pipeline stopping a real engine once the suggestion is final."""

from __future__ import annotations

import pytest

from engine.events import Commit, Done, Step
from engine.request import GenerationConfig
from engine.prompts.suggestion import Context, Pipeline, Rules

EDITOR = Rules(max_lines=10)
FIB_BODY = "    if n < 2:\n        return n\n    return fibonacci(n - 1)\n"


class Scripted:
    """A generation that commits one piece per forward pass and, as the engine, checks for a
    cancel before each pass; counts the passes it ran."""

    def __init__(self, pieces: list[str]):
        self.pieces = pieces
        self.forwards = 0
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __iter__(self):
        for n, piece in enumerate(self.pieces, 1):
            if self.cancelled:
                break
            self.forwards += 1
            yield Step("ar", 0, n, n, [n], [True], [1.0], [0])
            yield Commit([n], piece, n)
        yield Done(
            "".join(self.pieces[: self.forwards]),
            [],
            self.forwards,
            self.forwards,
            1.0,
            0.1,
            10.0,
            "ar",
            "cancelled" if self.cancelled else "eos",
        )


# prefix (ends at the cursor), suffix, the generated text (streamed a character a pass), rules,
# the suggestion offered, whether a rule ended it (the generation is then cancelled).
SITUATIONS = {
    "a new body ends where the code dedents below it": (
        "def fibonacci(n):\n",
        "\n\nprint(fibonacci(10))",
        FIB_BODY + "\ndef main():\n    pass",
        EDITOR,
        FIB_BODY.rstrip(),
        True,
    ),
    "after indentation the cursor's column is the block": (
        "def f():\n    ",
        "\n",
        "return 1\n    x = 2\nfoo()",
        EDITOR,
        "return 1\n    x = 2",
        True,
    ),
    "a dedent is judged once a line shows its indentation": (
        "def f():\n",
        "\n",
        "    x = 1\n  ",
        EDITOR,
        "    x = 1",
        False,
    ),
    "one line when text sits right of the cursor": ("print(f(", ")\n", "a, b\nprint()", EDITOR, "a, b", True),
    "the bracket right of the cursor is not written again": (
        "    handler = registry.get(b",
        ")\n",
        "inding)\n    return handler",
        EDITOR,
        "inding",
        True,
    ),
    "a bracket the suggestion opens is its own": ("f(", ")\n", "a, g(b)", EDITOR, "a, g(b)", False),
    "the bracket after the suggestion's own ones": ("f(", ")\n", "a, g(b))", EDITOR, "a, g(b)", True),
    "the bracket before a colon": ("if isinstance(x, ", "):\n    pass", "bytes):", EDITOR, "bytes", True),
    "the quote right of the cursor": ('open("', '")\n', 'a.txt", "r")', EDITOR, "a.txt", True),
    "only the bracket: nothing to offer": ("xs = [", "]\n", "]", EDITOR, "", True),
    "a loop keeps its first round": ("    ", "\n", "A, b" + ", c" * 7, EDITOR, "A, b, c", True),
    "a loop with text after it": ("    ", "\n", "A, b" + ", c" * 7 + ", d", EDITOR, "A, b, c", True),
    "five rounds are not a loop yet": ("    ", "\n", "A, b" + ", c" * 5, EDITOR, "A, b" + ", c" * 5, False),
    "a loop of lines": ("", "", "x = 0\n" * 12, EDITOR, "x = 0", True),
    "max_lines": ("", "", "a\nb\nc\nd", Rules(max_lines=2), "a\nb", True),
    "one line for eval-fim's line holes (max_lines 1)": (
        "def add(a, b):\n    ",
        "\n",
        "return a + b\n    pass",
        Rules(max_lines=1),
        "return a + b",
        True,
    ),
    "control characters never reach the file": ("", "", "a\x1a\x00b\tc", EDITOR, "ab\tc", False),
    "trailing blank lines are trimmed": ("", "", "x = 1\n\n   \n", EDITOR, "x = 1", False),
    "whitespace is never offered": ("", "", "  \n\t", EDITOR, "", False),
    "only the rest of the line again": ("f(a", ")\n", ")", EDITOR, "", True),
    "only the next line again": (
        "x\n",
        "\n\nprint(fibonacci(10))",
        "print(fibonacci(10))",
        EDITOR,
        "",
        False,
    ),
    "the next line again, after a newline": (
        "def f():",
        "\n    return 1",
        "\n    return 1",
        EDITOR,
        "",
        False,
    ),
    "only the suffix again": ("x\n", "\nb()\nc()\nd()", "b()\nc()", EDITOR, "", False),
    "a line the suffix does not hold": ("x\n", "\nc()", "b()", EDITOR, "b()", False),
    "the line above again": ("import os\nimport sys", "", "\nimport sys", EDITOR, "", False),
    "a new line below": ("import os\nimport sys", "", "\nimport re", EDITOR, "\nimport re", False),
    "the line above again, at its indentation": ("    x = 1\n    ", "", "x = 1", EDITOR, "", False),
    "n_indent (llama.cpp) with the editor rules off": (
        "def f():\n    ",
        "\n",
        "x = 1\n    y = 2\n  z = 3\n",
        Rules(editor=False, n_indent=4),
        "x = 1\n    y = 2",
        True,
    ),
    "the editor rules off: the bracket is written": (
        "f(",
        ")\n",
        "a)\nb",
        Rules(editor=False),
        "a)\nb",
        False,
    ),
}


@pytest.mark.parametrize(
    "prefix, suffix, generated, rules, offered, fired", SITUATIONS.values(), ids=SITUATIONS
)
def test_cursor_situations(prefix, suffix, generated, rules, offered, fired):
    pipeline = Pipeline(Context.around(prefix, suffix), rules)
    generation = Scripted(list(generated))
    events = list(pipeline.follow(generation))
    assert pipeline.suggestion == offered and pipeline.final == fired
    assert isinstance(events[-1], Done) and pipeline.done is events[-1]
    if fired:  # cancelled at once: no forward pass after the character that made it final
        assert generation.cancelled and generation.forwards == len(pipeline.raw) <= len(generated)
    else:
        assert not generation.cancelled and pipeline.raw == generated


@pytest.mark.parametrize(
    "prefix, suffix, generated, rules, offered, fired", SITUATIONS.values(), ids=SITUATIONS
)
def test_the_same_suggestion_when_the_text_arrives_in_one_block(
    prefix, suffix, generated, rules, offered, fired
):
    """Self-speculation commits a verified block at once: the rules must not depend on how the
    text was split into commits (a loop inside the block fires as it would a token at a time)."""
    pipeline = Pipeline(Context.around(prefix, suffix), rules)
    list(pipeline.follow(Scripted([generated])))
    assert pipeline.suggestion == offered and pipeline.final == fired


def test_context_around_a_cursor():
    ctx = Context.around("import os\n\ndef f(a", ", b):\n\n    return a\n")
    assert (ctx.line_before, ctx.rest_of_line, ctx.next_line) == ("def f(a", ", b):", "    return a")
    assert ctx.key == ("import os\n\ndef f(a", ", b):\n\n    return a\n")
    assert Context.around("", "") == Context("", "", "", "", "")


def test_a_one_line_suggestion_stops_the_engine_at_the_newline():
    config = GenerationConfig(stop=["END"])
    assert Pipeline(Context.around("f(", ")"), EDITOR).request(config).config.stop == ["END", "\n"]
    assert Pipeline(Context.around("f(", "\n)"), EDITOR).request(config).config.stop == ["END"]
    assert Pipeline(Context.around("", ""), Rules(max_lines=1)).request(config).config.stop == ["END", "\n"]
    request = Pipeline(Context.around("a", "b"), EDITOR).request(config)
    assert (request.prefix, request.suffix, request.is_fim) == ("a", "b", True)


def test_the_time_cap_fires_once_a_newline_came():
    now = [0.0]
    pipeline = Pipeline(Context.around("", ""), Rules(editor=False, max_predict_s=0.1), clock=lambda: now[0])
    now[0] = 5.0
    assert not pipeline.add(Step("prefill", 0, 0, 1, [1], [True], [1.0], [0]))  # the clock starts here
    now[0] = 5.5
    assert not pipeline.add(Commit([1], "no newline yet", 1))
    assert pipeline.add(Commit([2], "\nnext", 2))
    assert pipeline.text == "no newline yet\nnext"
    assert (
        pipeline.add(Commit([3], "more", 3)) and pipeline.text == "no newline yet\nnext"
    )  # final: kept as is


@pytest.fixture(scope="module")
def demo():
    import engine

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield engine.load("demo", device="cpu")


@pytest.mark.parametrize("mode", ["ar", "diffusion"])
def test_a_final_suggestion_stops_the_engine(demo, mode):
    """The demo model writes `return n`, then a new `def` at column 0: the dedent makes the
    suggestion final, and the engine runs no forward pass after it (it ran to 64 tokens before)."""
    config = GenerationConfig(mode=mode, max_new_tokens=64)
    ctx = Context.around("def fibonacci(n):\n", "\n\nprint(fibonacci(10))\n")
    pipeline = Pipeline(ctx, EDITOR)
    events, final_at = [], None
    for event in pipeline.follow(demo.generate(pipeline.request(config))):
        events.append(event)
        if pipeline.final and final_at is None:
            final_at = len(events) - 1
    assert pipeline.final and pipeline.suggestion.startswith("    return")
    after = events[final_at + 1 :]
    assert [type(e) for e in after] == [Done] and after[0].stop_reason == "cancelled"
    assert after[0].n_tokens == events[final_at].n_tokens < 64  # not one token generated after the stop
    unstopped = demo.complete(pipeline.request(config))
    assert unstopped.n_tokens == 64 and unstopped.nfe > after[0].nfe
