"""The headless completion rules: context, stop and filter rules, partial accept, cache."""

from __future__ import annotations

from nemodiff_tui.completion import (Context, SuggestionCache, advance, context_after, context_at, cut, finish,
                                     next_line, next_word, typed_since)

FIB = ["import sys", "", "def fibonacci(n):", "", "print(fibonacci(10))"]


def ctx(line_before: str = "", rest: str = "", next_line: str = "", suffix: str | None = None) -> Context:
    return Context("x\n" + line_before, rest + ("" if suffix is None else suffix), line_before, rest, next_line)


def test_context_is_whole_lines_about_three_to_one():
    lines = [f"line {i:03d}" for i in range(200)]  # 8 characters + newline each
    c = context_at(lines, 100, 4, budget=400)
    assert c.prefix.endswith("line 099\nline")
    assert c.suffix.startswith(" 100\nline 101")
    assert 250 <= len(c.prefix) <= 300 and 80 <= len(c.suffix) <= 100
    assert c.prefix.startswith("line ") and c.suffix.endswith(tuple(f"{i:03d}" for i in range(200)))


def test_context_gives_unused_budget_to_the_other_side():
    c = context_at(FIB, 3, 0, budget=1000)
    assert c.prefix == "import sys\n\ndef fibonacci(n):\n"
    assert c.suffix == "\nprint(fibonacci(10))"
    assert c.next_line == "print(fibonacci(10))"
    near_end = context_at([f"l{i:02d}" for i in range(60)] + ["x"], 60, 1, budget=100)
    assert len(near_end.prefix) > 75  # no suffix to spend budget on


def test_context_after_accepting_is_where_the_cursor_lands():
    lines = ["def f(a, b):", "    return g()", "x = 1"]
    after = context_after(lines, 1, len("    return g("), "a,\n        b", budget=1000)
    assert after.prefix == "def f(a, b):\n    return g(a,\n        b"
    assert after.suffix == ")\nx = 1" and after.rest_of_line == ")" and after.line_before == "        b"
    assert context_after(lines, 2, 5, "", budget=1000) == context_at(lines, 2, 5, budget=1000)


def test_dedent_below_the_block_stops():
    text = "    if n < 2:\n        return n\n    return fibonacci(n - 1)\n\ndef main():\n    pass"
    kept, stopped = cut(text, ctx(), 20)
    assert stopped and kept == "    if n < 2:\n        return n\n    return fibonacci(n - 1)\n"
    kept, stopped = cut("return 1\n    x = 2\nfoo()", ctx(line_before="    "), 20)
    assert stopped and kept == "return 1\n    x = 2"


def test_dedent_waits_for_a_line_to_show_its_indentation():
    assert cut("    x = 1\n", ctx(), 20) == ("    x = 1\n", False)
    assert cut("    x = 1\n  ", ctx(), 20) == ("    x = 1\n  ", False)


def test_single_line_when_text_sits_right_of_the_cursor():
    assert cut("a, b\nprint()", ctx(line_before="f(", rest=")"), 20) == ("a, b", True)


def test_the_bracket_right_of_the_cursor_is_not_written_again():
    assert cut("a, g(b)", ctx(line_before="f(", rest=")"), 20) == ("a, g(b)", False)  # still streaming
    assert cut("a, g(b))", ctx(line_before="f(", rest=")"), 20) == ("a, g(b)", True)
    assert cut("bytes):", ctx(line_before="if isinstance(x, ", rest="):"), 20) == ("bytes", True)
    assert cut('a.txt", "r")', ctx(line_before='open("', rest='")'), 20) == ("a.txt", True)
    assert finish("]", ctx(line_before="xs = [", rest="]"), 10) == ""


def test_a_loop_ends_the_suggestion_after_its_first_round():
    text = "A, b" + ", c" * 7
    assert cut(text, ctx(line_before="    "), 20) == ("A, b, c", True)
    assert cut(text[:-6], ctx(line_before="    "), 20) == (text[:-6], False)  # five rounds of ", c": not yet
    assert finish("x = 0\n" * 12, ctx(), 20) == "x = 0"


def test_max_lines():
    assert cut("a\nb\nc\nd", ctx(), 2) == ("a\nb", True)


def test_control_characters_never_reach_the_file():
    assert cut("a\x1a\x00b\tc", ctx(), 5)[0] == "ab\tc"


def test_finish_trims_and_drops():
    assert finish("x = 1\n\n   \n", ctx(), 10) == "x = 1"
    assert finish("  \n\t", ctx(), 10) == ""  # whitespace only
    assert finish(")", ctx(line_before="f(a", rest=")"), 10) == ""  # repeats the rest of the line
    call = "print(fibonacci(10))"
    assert finish(call, ctx(next_line=call, suffix="\n\n" + call), 10) == ""
    assert finish("\n    return 1", ctx(line_before="def f():", next_line="    return 1"), 10) == ""  # the next line
    assert finish("b()\nc()", ctx(suffix="\nb()\nc()\nd()"), 10) == ""  # the suffix
    assert finish("b()", ctx(suffix="\nc()"), 10) == "b()"
    above = Context("import os\nimport sys", "", "import sys", "", "")  # the cursor at the end of a line
    assert finish("\nimport sys", above, 10) == ""  # the line above, again
    assert finish("\nimport re", above, 10) == "\nimport re"
    assert finish("x = 1", Context("    x = 1\n    ", "", "    ", "", ""), 10) == ""


def test_partial_accept():
    assert next_word("    if n < 2:") == "    if"
    assert next_word(" < 2:") == " <"
    assert next_word("(n - 1)") == "("
    assert next_word("   ") == "   "
    assert next_line("x = 1\ny = 2") == "x = 1\n"
    assert next_line("y = 2") == "y = 2"


def test_typed_ahead():
    anchor = Context("def f():\n", "\n", "", "", "")
    typed = Context("def f():\n  ", "\n", "  ", "", "")
    assert typed_since(anchor, typed) == "  "
    assert typed_since(anchor, Context("def g():\n", "\n", "", "", "")) is None
    assert advance(["    return 1", "  pass", "x"], "  ") == ["  return 1", "pass"]
    assert advance(["ab"], "ab") == []  # fully typed: nothing left to show


def test_cache_is_lru_and_looks_back_over_typed_characters():
    cache = SuggestionCache(capacity=2)
    cache.put(("a", "s"), ["bcd"])
    cache.put(("x", "s"), [])
    assert cache.get(("a", "s")) == ["bcd"]
    assert cache.get(("x", "s")) == []  # known to have nothing worth offering
    assert cache.get(("ab", "s")) == ["cd"]  # typed the first character of the suggestion
    assert cache.get(("az", "s")) is None
    assert cache.get(("a", "other suffix")) is None
    cache.get(("x", "s"))
    cache.put(("y", "s"), ["1"])
    assert cache.get(("a", "s")) is None and len(cache) == 2  # the least recently used went
