"""What to ask the engine for at the cursor in an editor, and what to do with the answers: headless,
no Textual. (Where a suggestion ends is the engine's pipeline, `engine.prompts.suggestion`.)

The rules follow what users of llama.vim, Tabby, Continue and Copilot expect: a fill-in-the-middle
context about 3:1 prefix:suffix, from whole lines; partial accept by word and by line; suggestions
cached by (prefix, suffix), and typing the start of one keeps the rest.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence

from engine.prompts.suggestion import Context

PREFIX_SHARE = 0.75  # prefix:suffix = 3:1
_WORD = re.compile(r"\s*(\w+|[^\w\s]+)?")


def context_at(lines: Sequence[str], row: int, column: int, budget: int) -> Context:
    """Context around (row, column) of `lines`: whole lines above and below, within `budget` characters.

    The prefix gets `PREFIX_SHARE` of the budget and the suffix the rest; budget one side does not
    need goes to the other. Only whole lines are cut, so the model never sees half a statement.
    """
    line = lines[row]
    before, after = line[:column][-budget:], line[column:][:budget]
    above = _fit(reversed(lines[max(0, row - budget) : row]), budget)
    below = _fit(lines[row + 1 : row + 1 + budget], budget)
    prefix_budget = int(budget * PREFIX_SHARE) - len(before)
    suffix_budget = budget - int(budget * PREFIX_SHARE) - len(after)
    above, below = (
        _fit(above, prefix_budget + max(0, suffix_budget - _size(below))),
        _fit(below, suffix_budget + max(0, prefix_budget - _size(above))),
    )
    prefix = "".join(f"{text}\n" for text in reversed(above)) + before
    suffix = after + "".join(f"\n{text}" for text in below)
    following = next((text for text in lines[row + 1 :] if text.strip()), "")
    return Context(prefix, suffix, before, after, following)


def context_after(lines: Sequence[str], row: int, column: int, text: str, budget: int) -> Context:
    """The context where the cursor lands once `text` is inserted at (row, column): what accepting
    a suggestion leads to, so the next one can be asked for before the user accepts."""
    line = lines[row]
    inserted = (line[:column] + text + line[column:]).split("\n")
    after = [*lines[:row], *inserted, *lines[row + 1 :]]
    return context_at(after, row + len(inserted) - 1, len(inserted[-1]) - len(line) + column, budget)


def _fit(lines, budget: int) -> list[str]:
    """The leading lines of `lines` whose text and newlines fit in `budget` characters."""
    kept: list[str] = []
    used = 0
    for text in lines:
        used += len(text) + 1
        if used > budget:
            break
        kept.append(text)
    return kept


def _size(lines: list[str]) -> int:
    return sum(len(text) + 1 for text in lines)


def next_word(text: str) -> str:
    """The part of a suggestion that accept-word inserts: leading whitespace and one word or
    punctuation run (all of it when nothing else is left)."""
    match = _WORD.match(text)
    return text[: match.end()] if match and match.end() else text


def next_line(text: str) -> str:
    """The part of a suggestion that accept-line inserts: through its first newline."""
    end = text.find("\n")
    return text if end < 0 else text[: end + 1]


def typed_since(anchor: Context, ctx: Context) -> str | None:
    """Text typed at the cursor since `anchor` (ctx = anchor plus that text), or None."""
    if ctx.suffix != anchor.suffix or not ctx.prefix.startswith(anchor.prefix):
        return None
    return ctx.prefix[len(anchor.prefix) :]


def advance(alternatives: Sequence[str], typed: str) -> list[str]:
    """What is left of each alternative that starts with `typed` (typed the first characters of it)."""
    return [text[len(typed) :] for text in alternatives if text.startswith(typed) and len(text) > len(typed)]


class SuggestionCache:
    """LRU of final suggestions keyed by (prefix, suffix).

    A miss looks back up to `lookback` characters: when the user typed the start of a cached
    suggestion, the rest is returned without a new request (as llama.vim does).
    """

    def __init__(self, capacity: int = 250, lookback: int = 128):
        self.capacity = capacity
        self.lookback = lookback
        self._items: OrderedDict[tuple[str, str], list[str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: tuple[str, str], alternatives: list[str]) -> None:
        self._items[key] = list(alternatives)
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, key: tuple[str, str]) -> list[str] | None:
        """Cached alternatives for `key` ([] when nothing was worth offering), or None on a miss."""
        if key in self._items:
            self._items.move_to_end(key)
            return list(self._items[key])
        prefix, suffix = key
        for k in range(1, min(self.lookback, len(prefix)) + 1):
            earlier = (prefix[:-k], suffix)
            if earlier in self._items:
                rest = advance(self._items[earlier], prefix[-k:])
                if rest:
                    return rest
        return None

    def clear(self) -> None:
        self._items.clear()
