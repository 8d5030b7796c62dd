"""The headless completion rules: context, partial accept, cache (where a suggestion ends is
tests/engine/test_suggestion.py)."""

from __future__ import annotations

from engine.prompts.suggestion import Context
from nemodiff_tui.completion import (
    SuggestionCache,
    advance,
    context_after,
    context_at,
    next_line,
    next_word,
    typed_since,
)

FIB = ["import sys", "", "def fibonacci(n):", "", "print(fibonacci(10))"]


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
