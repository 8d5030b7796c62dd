import ast
import random
import re

from engine.evaluation.corpus import stdlib_root
from engine.prompts.bpe import text_encoder
from engine.training.data import TrainStream
from engine.training.renaming import Renamer, renamable, substitute

PROGRAM = '''\
import os.path as osp
from functools import reduce

LIMIT = 3


class Counter:
    """Counts with `step`."""

    def __init__(self, step):
        self.step = step
        self.total = 0

    def bump(self, times):
        for _ in range(times):
            self.total += self.step
        return self.total


def _scaled(values, factor=2):
    # scale every value by factor
    doubled = [value * factor for value in values]
    return reduce(lambda left, right: left + right, doubled, 0)


def test_nothing():
    pass


counter = Counter(LIMIT)
result = [counter.bump(2), _scaled([1, 2, 3], factor=LIMIT), osp.basename("a/b.py"), "done"]
'''

OTHER = """\
MAX_SIZE = 10
BUFFER = 2


class Reader:
    def read_all(self, stream, items):
        data = [stream, items]
        return data


def _helper(path, items, data):
    return path, items, data


def _parse(path, stream):
    return path, stream
"""


def test_renamable_names_are_the_files_own():
    names = renamable(PROGRAM)
    assert {
        "LIMIT",
        "Counter",
        "times",
        "_scaled",
        "values",
        "doubled",
        "value",
        "counter",
        "result",
        "osp",
        "left",
        "right",
    } <= set(names)
    # self, a builtin, a dunder, one letter, attributes (`step` is also `self.step`), a call's
    # keyword, imported names, a test
    for kept in (
        "self",
        "range",
        "__init__",
        "_",
        "step",
        "total",
        "bump",
        "factor",
        "reduce",
        "os",
        "test_nothing",
    ):
        assert kept not in names
    assert renamable("def broken(:\n") == []


def test_a_renamed_program_computes_the_same():
    renamer = Renamer([PROGRAM, OTHER, OTHER])  # the pool: names at least two files define
    rng = random.Random(0)
    for _ in range(20):
        mapping = renamer.mapping(0, rng)
        assert mapping and len(set(mapping.values())) == len(mapping)
        for old, new in mapping.items():  # same style, same privacy
            assert old.startswith("_") == new.startswith("_") and old[0].isupper() == new[0].isupper()
        renamed = substitute(PROGRAM, mapping)
        original, copy = {}, {}
        exec(PROGRAM, original)
        exec(renamed, copy)
        assert copy[mapping.get("result", "result")] == original["result"]
        assert substitute(renamed, {new: old for old, new in mapping.items()}) == PROGRAM


def test_substitute_renames_whole_words_not_attributes():
    text = "step = 1  # step by step\nself.step = step_size + step\nprint('step', x.step)\n"
    assert substitute(text, {"step": "stride"}) == (
        "stride = 1  # stride by stride\nself.step = step_size + stride\nprint('stride', x.step)\n"
    )


def test_renamed_stdlib_files_parse_and_rename_back():
    root = stdlib_root()
    paths = sorted(root.glob("*.py"))[::12]  # a spread of real modules, ~20 files
    texts = [p.read_text(encoding="utf-8") for p in paths]
    renamer = Renamer(texts)
    rng = random.Random(1)
    renamed_files = 0
    for i, text in enumerate(texts):
        mapping = renamer.mapping(i, rng)
        renamed = substitute(text, mapping)
        ast.parse(renamed)
        assert substitute(renamed, {new: old for old, new in mapping.items()}) == text
        renamed_files += renamed != text
    assert renamed_files >= len(texts) // 2


def test_the_plain_stream_reads_renamed_files(tiny_tokenizer):
    texts = [PROGRAM, OTHER, OTHER]
    stream = TrainStream(texts, text_encoder(tiny_tokenizer), 64, seed=2, fim_rate=0.0, rename_rate=1.0)
    read = tiny_tokenizer.decode(sum(stream.next_batch(40).tolist(), []), skip_special_tokens=True)
    new = set(re.findall(r"\w+", read)[:-1]) - set(re.findall(r"\w+", "".join(texts)))  # the last may be cut
    assert new and {word.lstrip("_") for word in new} <= {
        name for names in stream.renamer.pool.values() for name in names
    }
