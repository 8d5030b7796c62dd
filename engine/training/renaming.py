"""Identifier renaming: a training file seen again under other names.

The demo model's corpus (the standard library, about 9 M tokens) is small enough that a few
epochs turn training into memorisation (docs/MODEL_CARD.md). A copy of a file in which some of
the names it defines are replaced, consistently, by names defined elsewhere in the corpus is text
the model has not seen, with the structure it should learn: on a small analogue of the demo run
it lowered held-out loss 4.758 -> 4.687, four times what dropout gained. On the demo model itself
it lowered held-out loss too, but neither greedy completions nor self-spec acceptance improved,
so it is off by default (`rename_rate` 0; measurements in docs/MODEL_CARD.md).

A name is renamed as a whole word wherever it is not read as an attribute (`x.name`), so its
comments, docstrings and strings follow it, and the copy is the same program under other names.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import random
import re
import warnings
from collections import Counter

SHARE = 0.5  # of a file's renamable names, the share a renamed copy renames
_TRIES = 8  # draws from the pool per name before leaving it as it is
_WORD = re.compile(r"\w+")
_KEEP = frozenset(dir(builtins)) | {"self", "cls"}


def renamable(source: str) -> list[str]:
    """The names `source` defines (functions, classes, parameters, assigned names) that can be
    renamed inside this file alone: `_free` ones, no dunders, and never an attribute, a call's
    keyword or an imported name (`x.name`, `f(name=...)`, `from m import name`), which belong to
    code elsewhere (a method reached through `self.`). Sorted; [] when `source` does not parse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in test fixtures
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    defined: set[str] = set()
    foreign: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.Attribute):
            foreign.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            foreign.add(node.arg)
        elif isinstance(node, ast.alias):  # `import a.b as c`: `a` is another module's, `c` ours
            foreign.add(node.name.split(".")[0])
            if node.asname:
                defined.add(node.asname)
    return sorted(n for n in defined - foreign if _free(n) and not n.startswith("__"))


def _free(name: str) -> bool:
    """Not a keyword, builtin, `self`/`cls`, one letter, or a test's name (unittest finds those by it)."""
    return (
        len(name) > 1
        and name.isidentifier()
        and name not in _KEEP
        and not name.startswith("test")
        and not keyword.iskeyword(name)
        and not keyword.issoftkeyword(name)
    )


def style(name: str) -> str:
    """`UPPER`, `Capitalised` or `lower`, read after any leading underscores."""
    bare = name.lstrip("_")
    return "UPPER" if bare.isupper() else "Capitalised" if bare[:1].isupper() else "lower"


def substitute(text: str, mapping: dict[str, str]) -> str:
    """`text` with each whole word of `mapping` not after a dot replaced by its value."""
    if not mapping:
        return text
    words = "|".join(map(re.escape, sorted(mapping, key=len, reverse=True)))
    return re.sub(rf"(?<![\w.])(?:{words})(?!\w)", lambda m: mapping[m.group()], text)


class Renamer:
    """Draws renamings of the corpus's files; a file's names are found once, when first drawn."""

    def __init__(self, texts: list[str]):
        self.texts = texts
        self._names: dict[int, list[str]] = {}
        self._pool: dict[str, list[str]] | None = None

    def names(self, index: int) -> list[str]:
        if index not in self._names:
            self._names[index] = renamable(self.texts[index])
        return self._names[index]

    @property
    def pool(self) -> dict[str, list[str]]:
        """Replacement names by `style`, without leading underscores: those at least two files
        define (a common name, not one test's), once per file, so a common one is drawn often."""
        if self._pool is None:
            bare = [{b for n in self.names(i) if _free(b := n.lstrip("_"))} for i in range(len(self.texts))]
            common = {n for n, count in Counter(n for names in bare for n in names).items() if count > 1}
            self._pool = {}
            for names in bare:
                for n in sorted(names & common):
                    self._pool.setdefault(style(n), []).append(n)
        return self._pool

    def mapping(self, index: int, rng: random.Random) -> dict[str, str]:
        """A renaming of `SHARE` of file `index`'s renamable names to pool names of the same style
        and leading underscores that are not words of the file yet, all different (so the renaming
        can be undone exactly)."""
        names = self.names(index)
        if not names:
            return {}
        taken = set(_WORD.findall(self.texts[index]))
        out: dict[str, str] = {}
        for name in rng.sample(names, round(SHARE * len(names))):
            underscores, pool = name[: len(name) - len(name.lstrip("_"))], self.pool.get(style(name))
            for _ in range(_TRIES if pool else 0):
                new = underscores + rng.choice(pool)
                if new not in taken:
                    out[name] = new
                    taken.add(new)
                    break
        return out
