"""Text rules that end a completion: loops and the closing bracket right of the cursor."""

from __future__ import annotations

import pytest

from engine.prompts.stop_rules import closing_at, loop


@pytest.mark.parametrize(
    "text, kept",
    [
        ("2, 3, 4, 5, 5, 5, 5, 5, 5, 5", "2, 3, 4, 5"),  # one round of the loop stays
        ('"""\n    A, b, c, c, c, c, c, c, c, c', '"""\n    A, b, c'),
        (
            "x = f(a)\n" + "self.assertEqual(x, y)\n" * 4,
            "x = f(a)\nself.assertEqual(x, y)\n",
        ),  # a long unit: 4 times
        # two lines or more: twice is a loop, cut at a line boundary even where the unit starts mid-line
        ("with open(p) as f:\n    f.read()\n" * 2 + "with open(", "with open(p) as f:\n    f.read()\n"),
    ],
)
def test_a_loop_is_cut_after_its_first_round(text, kept):
    assert text[: loop(text)] == kept


@pytest.mark.parametrize(
    "text",
    [
        "x = 1\n" + " " * 40,  # deep indentation, still streaming
        "# " + "=" * 60,  # a banner: one character repeated
        "[0, 0, 0, 0, 0]",  # short repetition in real code
        "hello();\n" * 5,  # a short unit needs 6 rounds
        "a = 1\nb = 2\na = 1\n",  # two lines, not yet twice
        "",
    ],
)
def test_what_is_not_a_loop(text):
    assert loop(text) is None


def test_a_loop_is_found_as_it_streams():
    text = "total = 1"
    for _ in range(5):
        text += " + 1"
        assert loop(text) is None
    assert loop(text + " + 1") == len("total = 1 + 1")


def test_closing_at_skips_brackets_and_strings_the_text_opens():
    assert closing_at("foo)", ")") == 3
    assert closing_at("bytes):", ")") == 5
    assert closing_at("f(1), g[2])", ")") == 10
    assert closing_at('")" + x)', ")") == 7  # the ")" inside the string closes nothing
    assert closing_at("a[i]]", "]") == 4
    assert closing_at('data.txt", "r")', '"') == 8
    assert closing_at("f(1)", ")") is None
    assert closing_at("x", ":") is None  # only brackets and quotes
