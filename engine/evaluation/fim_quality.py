"""`nemodiff eval-fim`: fill-in-the-middle quality and speed on held-out code.

A hole is `{"prefix", "suffix", "middle", "kind"}`: `line` (the middle is one whole line, without
its indentation) and `span` (the rest of a line, cut at a random character) are one-line
suggestions; `block` (the body of a compound statement) may have up to 16 lines. Each hole is
filled by the editor's suggestion pipeline (`engine.prompts.suggestion`: EOS / the FIM end, a
line indented less than the hole, the bracket right of the cursor, a loop, the filter on the
final text), so the score is that of what an editor offers. Exact match ignores trailing
whitespace; edit similarity is difflib's ratio. Holes from `make_holdout` come from modules never
trained on.

`edit` holes are line holes that look like editing rather than fresh writing: the line has a
near-duplicate earlier in the kept prefix (the next branch, the next test, the next field), named
in `near`. They are scored as line holes and grouped as `line/near-duplicate`.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.events import Done
from engine.evaluation.lossless import parted_at_tie
from engine.prompts.stop_rules import indentation
from engine.prompts.suggestion import Context, Pipeline, Rules
from engine.request import GenerationConfig

KINDS = ("line", "span", "block")
BUILT_KINDS = KINDS + ("edit",)  # what make_holdout builds; an edit hole is a line hole
MAX_BLOCK_LINES = 16
NEAR_RATIO = 0.6  # difflib ratio from which an earlier line is a near-duplicate (an identical one is not)
NEAR_CHARS = 300  # ... if it lies this close above the hole (the demo model sees about 150 tokens of prefix)
PREFIX_CHARS, SUFFIX_CHARS = 600, 200  # context kept around each hole (the demo model saw 256 tokens)
MAX_NEW = {"line": 48, "span": 48, "block": 160}


# -- building holes ------------------------------------------------------------------------------


def _context(text: str, start: int, end: int) -> tuple[str, str]:
    prefix, suffix = text[:start], text[end:]
    if len(prefix) > PREFIX_CHARS:
        prefix = prefix[-PREFIX_CHARS:]
        prefix = prefix[prefix.find("\n") + 1 :]
    if len(suffix) > SUFFIX_CHARS:
        suffix = suffix[: suffix.rfind("\n", 0, SUFFIX_CHARS) + 1]
    return prefix, suffix


def _prose_lines(text: str) -> set[int]:
    """0-based lines inside multi-line strings (docstrings): holes should be code, not prose."""
    import io
    import tokenize

    inside: set[int] = set()
    try:
        for t in tokenize.generate_tokens(io.StringIO(text).readline):
            if t.type == tokenize.STRING and t.end[0] > t.start[0]:
                inside.update(range(t.start[0] - 1, t.end[0]))
    except (tokenize.TokenError, SyntaxError):
        pass
    return inside


def _line_holes(path: str, text: str) -> list[dict]:
    holes, pos = [], 0
    prose = _prose_lines(text)
    for n, line in enumerate(text.split("\n")):
        body = line.strip()
        ind = indentation(line)
        if 8 <= len(body) <= 100 and not body.startswith("#") and n not in prose:
            prefix, suffix = _context(text, pos + ind, pos + len(line))
            holes.append(dict(prefix=prefix, suffix=suffix, middle=line[ind:], kind="line", source=path))
        pos += len(line) + 1
    return holes


def _edit_holes(line_holes: list[dict]) -> list[dict]:
    """The line holes with a near-duplicate line at most NEAR_CHARS above them (the closest is `near`)."""
    holes = []
    for hole in line_holes:
        middle, above = hole["middle"], 0
        m = difflib.SequenceMatcher(None, "", middle, autojunk=False)  # indexes the middle once
        for earlier in reversed(hole["prefix"].split("\n")[:-1]):
            above += len(earlier) + 1
            body = earlier.strip()
            if above > NEAR_CHARS:
                break
            m.set_seq1(body)  # = edit_similarity(body, middle) >= NEAR_RATIO, cheap upper bounds first
            if (
                body != middle
                and m.real_quick_ratio() >= NEAR_RATIO
                and m.quick_ratio() >= NEAR_RATIO
                and m.ratio() >= NEAR_RATIO
            ):
                holes.append(hole | {"near": body})
                break
    return holes


def _span_holes(path: str, text: str, rng: random.Random) -> list[dict]:
    holes, pos = [], 0
    prose = _prose_lines(text)
    for n, line in enumerate(text.split("\n")):
        ind = indentation(line)
        if 12 <= len(line.strip()) <= 100 and not line.strip().startswith("#") and n not in prose:
            at = rng.randrange(ind + 2, len(line) - 2)
            word = lambda c: c.isalnum() or c == "_"  # noqa: E731
            cut_kind = "mid-word" if word(line[at - 1]) and word(line[at]) else "boundary"
            prefix, suffix = _context(text, pos + at, pos + len(line))
            holes.append(
                dict(prefix=prefix, suffix=suffix, middle=line[at:], kind="span", cut=cut_kind, source=path)
            )
        pos += len(line) + 1
    return holes


def _block_holes(path: str, text: str) -> list[dict]:
    lines, holes = text.split("\n"), []
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    prose = _prose_lines(text)
    for i, header in enumerate(lines[:-1]):
        if not header.rstrip().endswith(":") or header.strip().startswith("#") or i in prose:
            continue
        first = lines[i + 1]
        ind = indentation(first)
        if ind <= indentation(header) or not first.strip():
            continue
        j = i + 1
        while (
            j < len(lines)
            and j - i <= MAX_BLOCK_LINES
            and (not lines[j].strip() or indentation(lines[j]) >= ind)
        ):
            j += 1
        while j > i + 1 and not lines[j - 1].strip():
            j -= 1
        if j - i - 1 > MAX_BLOCK_LINES or j - i - 1 < 2:
            continue
        start, end = starts[i + 1] + ind, starts[j] - 1
        prefix, suffix = _context(text, start, end)
        holes.append(dict(prefix=prefix, suffix=suffix, middle=text[start:end], kind="block", source=path))
    return holes


def make_holdout(per_kind: int = 200, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> list[dict]:
    """Deterministic holes from the held-out stdlib modules (see engine.evaluation.corpus.HOLDOUT), of
    `kinds` (any of BUILT_KINDS). Every pool is sampled whatever is asked, so a kind's holes do
    not depend on which other kinds were asked for."""
    from engine.evaluation.corpus import holdout_files

    rng = random.Random(seed)
    pools: dict[str, list[dict]] = {k: [] for k in BUILT_KINDS}
    for path, text in holdout_files():
        lines = _line_holes(path, text)
        pools["line"] += lines
        pools["span"] += _span_holes(path, text, rng)
        pools["block"] += _block_holes(path, text)
        pools["edit"] += _edit_holes(lines)
    out = []
    for kind in BUILT_KINDS:
        sample = rng.sample(pools[kind], min(per_kind, len(pools[kind])))
        out += sample if kind in kinds else []
    return out


# -- evaluating ----------------------------------------------------------------------------------


def edit_similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def fill(engine, hole: dict, config: GenerationConfig) -> tuple[str, Done]:
    """The suggestion for one hole, through the suggestion pipeline with its kind's line limit."""
    pipeline = Pipeline(
        Context.around(hole["prefix"], hole["suffix"]),
        Rules(max_lines=MAX_BLOCK_LINES if hole["kind"] == "block" else 1),
    )
    generation = engine.generate(pipeline.request(config.replace(max_new_tokens=MAX_NEW[hole["kind"]])))
    for _ in pipeline.follow(generation):
        pass
    return pipeline.suggestion, pipeline.done


@dataclass
class Score:
    n: int = 0
    exact: int = 0
    similarity: float = 0.0
    tokens: int = 0
    nfe: int = 0
    prefill_passes: int = 0
    seconds: float = 0.0
    copy_drafted: int = 0
    copy_accepted: int = 0
    by_group: dict[str, list[int]] = field(default_factory=dict)  # group -> [exact, n]
    outputs: list[tuple[str, Done]] = field(default_factory=list)  # per hole: the prediction, the Done

    def add(self, hole: dict, pred: str, done: Done) -> None:
        ok = pred.rstrip() == hole["middle"].rstrip()
        self.n += 1
        self.exact += ok
        self.similarity += edit_similarity(pred.rstrip(), hole["middle"].rstrip())
        self.tokens += done.n_tokens
        self.nfe += done.nfe
        self.prefill_passes += done.prefill_passes
        self.seconds += done.seconds
        self.copy_drafted += done.copy_drafted
        self.copy_accepted += done.copy_accepted
        self.outputs.append((pred, done))
        for group in (
            hole["kind"],
            f"{hole['kind']}/{hole['cut']}" if hole.get("cut") else None,
            f"{hole['kind']}/near-duplicate" if hole.get("near") else None,
        ):
            if group:
                g = self.by_group.setdefault(group, [0, 0])
                g[0] += ok
                g[1] += 1

    def summary(self, mode: str) -> dict:
        out = {
            "mode": mode,
            "n": self.n,
            "exact_match": self.exact / max(self.n, 1),
            "edit_similarity": self.similarity / max(self.n, 1),
            "tokens_per_forward": self.tokens / max(self.nfe, 1),
            "nfe": self.nfe,
            "prefill_passes": self.prefill_passes,  # docs/REFERENCE_RULES.md
            "tokens_per_second": self.tokens / self.seconds if self.seconds else 0.0,
        }
        if self.copy_drafted:
            out |= {
                "copy_drafted": self.copy_drafted,
                "copy_accepted": self.copy_accepted,
                "copy_acceptance": self.copy_accepted / self.copy_drafted,
            }
        return out


def same_as_ar(engine, ar: tuple[str, Done], other: tuple[str, Done]) -> bool:
    """Did a hole's generation write what AR wrote, or part from it only at a rounding tie
    (engine/evaluation/lossless.py)? The pipeline cancels a generation where a rule fires, and a
    self-spec cycle can run past that point: a cancelled stream is compared as far as it went."""
    a, b = ar[1].token_ids, other[1].token_ids
    if ar[1].stop_reason == "cancelled" and len(a) <= len(b):
        b = b[: len(a)]
    if other[1].stop_reason == "cancelled" and len(b) <= len(a):
        a = a[: len(b)]
    return ar[0] == other[0] or parted_at_tie(engine, ar[1].prompt_token_ids, a, b)


def evaluate(
    engine,
    holes: list[dict],
    configs: list[GenerationConfig],
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[dict, dict]]:
    """(summary, exact match per kind, cut and near-duplicate) per config. The modes take turns on
    each hole, each paying its own prefill, so machine noise hits them alike. Where AR runs too,
    every other mode's summary has its speed-up over AR (AR's seconds over its own, for the same
    holes: a mode that verifies a block past the point where a rule ends the suggestion generates
    tokens nobody sees, so tokens/s would flatter it), and a self-spec one says whether it wrote
    what AR wrote on every hole (`matches_ar`) and AR's tokens over its forward passes
    (`ar_tokens_per_forward`, the tokens per forward of the suggestions both wrote)."""
    scores = [Score() for _ in configs]
    done = 0
    for hole in holes:
        for score, config in zip(scores, configs):
            engine.runner.crop(0)
            score.add(hole, *fill(engine, hole, config))
            done += 1
            if progress:
                progress(done, len(holes) * len(configs))
    summaries = [score.summary(config.mode) for score, config in zip(scores, configs)]
    ar = next((score for score, config in zip(scores, configs) if config.mode == "ar"), None)
    for summary, score, config in zip(summaries, scores, configs):
        if ar is None or score is ar:
            continue
        summary["speedup_vs_ar"] = ar.seconds / score.seconds if score.seconds else None
        if config.mode == "self-spec":
            summary["matches_ar"] = all(same_as_ar(engine, a, o) for a, o in zip(ar.outputs, score.outputs))
            summary["ar_tokens_per_forward"] = ar.tokens / max(score.nfe, 1)
    return [
        (s, {k: v[0] / v[1] for k, v in sorted(score.by_group.items())})
        for s, score in zip(summaries, scores)
    ]
