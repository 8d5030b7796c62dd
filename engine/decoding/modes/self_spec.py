"""Self-speculation: the model drafts a block bidirectionally and verifies it causally.

Every emitted token is the causal (AR) choice given an already-verified prefix, so at
temperature 0 the output equals AR greedy decoding, and at T > 0 every token is an AR sample.

linear:    draft pass ([next, MASK x (B-1)], LoRA on, cache read-only) + causal verify pass.
quadratic: one pass over B rows `[d_i, MASK x B]`: the row heads form the causal verifier and
           each row's masks pre-draft the next block as if d_0..d_i were accepted.

Copy drafts (engine/decoding/copy_draft.py) come first where the text around the cursor has one;
the verifier is unchanged, so the output is too. Linear verifies a copy without a draft pass,
even a copy shorter than the block: filling its remaining slots costs a pass for the few tokens
the model's draft adds after a fully accepted copy (on the demo model's editing holes, such
cycles accepted 5.0 tokens in two passes against 3.8 in one; docs/BENCHMARKS.md). Quadratic,
whose pass has the same cost either way, puts the copy in place of the pre-draft's first slots.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch

from engine.decoding.modes.ar import run_ar
from engine.decoding.modes.state import DecodeState
from engine.decoding.modes.verify import accept, verify_step
from engine.events import Event, Note
from kernels import ops
from kernels.ops import Pattern


@functools.lru_cache(maxsize=8)
def quadratic_mask(n: int, device=None) -> torch.Tensor:
    """[n(n+1), n(n+1)] bool mask of the quadratic layout (row r = [d_r, MASK x n]); built once per
    size and device (every cycle uses it), so callers must not modify it.

    Row heads see the heads of rows 0..r (the causal verifier chain); the masks of row r see
    all of row r and the heads of rows 0..r (a pre-draft assuming d_0..d_r are accepted).
    """
    w = n + 1
    row = torch.arange(n * w, device=device) // w
    col = torch.arange(n * w, device=device) % w
    head_k = (col == 0)[None, :] & (row[None, :] <= row[:, None])
    same_row = (row[None, :] == row[:, None]) & (col[:, None] > 0)
    return head_k | same_row


def quadratic_pass(runner, draft: list[int], mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over rows `[d_i, MASK x n]` after the cache (read-only); hidden states [n(n+1), H]
    and the row heads' indices into them."""
    n = len(draft)
    w = n + 1
    device = runner.device
    tokens = [t for d in draft for t in [d] + [mask_id] * n]
    positions = (
        runner.length
        + torch.arange(n, device=device).repeat_interleave(w)
        + torch.arange(w, device=device).repeat(n)
    )
    heads = torch.arange(n, device=device) * w
    lora = torch.ones(n * w, dtype=torch.bool, device=device)
    lora[heads] = False  # the adapter drafts; it never touches the verifier chain
    return runner.forward(tokens, Pattern.MASK, positions, quadratic_mask(n, device), lora), heads


def _draft(ctx: DecodeState, head: list[int], n: int) -> list[int]:
    """One bidirectional pass over [head, MASK x (n-len(head))]; every mask filled with its argmax."""
    runner = ctx.runner
    hidden = runner.forward(head + [ctx.mask_id] * (n - len(head)), Pattern.BIDIRECTIONAL, lora=True)
    ids, _ = ops.argmax_confidence(runner.logits(hidden[len(head) :]), ctx.mask_id)
    ctx.seq.nfe += 1
    return head + ids.tolist()


def _count_cycle(ctx: DecodeState, m: int, copied: int, draft_pass: bool) -> None:
    """A verifying pass that accepted m drafts (the first `copied` of them copies) and the bonus
    token; `auto` pools it with what the cycle cost (a cycle that verified a copy ran no draft pass)."""
    seq = ctx.seq
    seq.nfe += 1
    seq.accepted[m + 1] += 1
    seq.copy_drafted += copied
    seq.copy_accepted += min(m, copied)
    if ctx.auto is not None:
        ctx.auto.record(m + 1, draft_pass)


def _switch_to_ar(ctx: DecodeState, nxt: int) -> Iterator[Event]:
    note = "auto: drafts are almost never accepted on this prompt; continuing in AR mode"
    ctx.seq.switched_to = "ar"
    ctx.seq.notes.append(note)
    yield Note(note)
    yield from run_ar(ctx, nxt)


def run_linear(ctx: DecodeState, nxt: int) -> Iterator[Event]:
    seq, runner = ctx.seq, ctx.runner
    cycle = 0
    while ctx.running:
        if ctx.auto is not None and ctx.auto.gives_up(cycle, seq.accepted):
            yield from _switch_to_ar(ctx, nxt)
            return
        n = min(ctx.block_size, seq.remaining + 1)
        draft = [nxt] + ctx.copied(n - 1)
        copied = len(draft) - 1
        if not copied:  # a copy is verified on its own, even one shorter than the block (see above)
            draft = _draft(ctx, draft, n)
            yield verify_step(ctx, "draft", cycle, draft, [nxt], copied)
            if not ctx.running:
                return
        hidden = runner.forward(draft, Pattern.CAUSAL)
        accepted, m = accept(ctx, draft, runner.logits(hidden))
        runner.keep(draft[: m + 1])  # = crop the staged verify chunk to L + m + 1
        _count_cycle(ctx, m, copied, not copied)
        nxt = accepted[-1]
        yield verify_step(ctx, "verify", cycle, draft, draft[: m + 1], copied)
        yield from ctx.emit(accepted)
        cycle += 1


def run_quadratic(ctx: DecodeState, nxt: int) -> Iterator[Event]:
    seq, runner = ctx.seq, ctx.runner
    n = min(ctx.block_size, seq.remaining + 1)
    draft = [nxt] + ctx.copied(n - 1)
    copied = len(draft) - 1
    if len(draft) < n:
        draft = _draft(ctx, draft, n)
        yield verify_step(ctx, "draft", 0, draft, [nxt], copied)
    cycle = 0
    while ctx.running:
        if ctx.auto is not None and ctx.auto.gives_up(cycle, seq.accepted):
            yield from _switch_to_ar(ctx, draft[0])
            return
        n = len(draft)
        w = n + 1
        hidden, heads = quadratic_pass(runner, draft, ctx.mask_id)
        accepted, m = accept(ctx, draft, runner.logits(hidden[heads]))  # row-head logits only
        runner.keep(draft[: m + 1], offsets=heads[: m + 1].tolist())
        _count_cycle(ctx, m, copied, True)
        yield verify_step(ctx, "quadratic", cycle, draft, draft[: m + 1], copied)
        yield from ctx.emit(accepted)
        cycle += 1
        # The accepted row's masks pre-drafted positions L+m+1...; the AR choice replaces the first,
        # and a copy replaces the pre-draft where one exists.
        n_next = min(ctx.block_size, seq.remaining + 1)
        head = [accepted[-1]] + ctx.copied(n_next - 1)
        copied = len(head) - 1
        if len(head) < n_next:
            row = hidden[m * w + 1 + len(head) : m * w + 1 + n_next]
            head += ops.argmax_confidence(runner.logits(row), ctx.mask_id)[0].tolist()
        draft = head
