"""Block diffusion with causal context (NLD's FastDiffuser).

Per block: `[seed, MASK x (B-1)]` is denoised by bidirectional passes that read but never write
the cache; each pass commits slots chosen by the commit policy (never re-masked) from each slot's
confidence, the probability of its pick under the full-vocabulary softmax (NVIDIA's rule: the mask
token is never picked but its probability counts; docs/REFERENCE_RULES.md); a committed
EOS (or a token whose own text holds a stop string; one split across tokens is cut when it is
committed) freezes the slots after it. One causal pass over the finished block then writes its
exact K/V and yields the next seed, so the cache always equals what AR decoding would hold.

Copy drafts (engine/decoding/copy_draft.py) join that closing pass: what followed the output's
tail elsewhere in the text is appended to the block and verified by the pass's causal logits, AR's
rule (`close_block`). They are not placed inside the block for the diffusion rule to judge: a slot
holding a token gets no confidence of its own from NLD's bidirectional pass (the loss trains only
masked slots; docs/REFERENCE_RULES.md lists this deviation).
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.decoding.commit_policy import policy_for
from engine.decoding.modes.state import DecodeState
from engine.decoding.modes.verify import accept, verify_step
from engine.events import MASKED, Event, Step
from kernels.ops import Pattern


def run_diffusion(ctx: DecodeState, seed: int) -> Iterator[Event]:
    policy = policy_for(ctx.config.schedule, ctx.config.threshold)
    seq, runner = ctx.seq, ctx.runner
    block = 0
    while ctx.running:
        n = min(ctx.block_size, seq.remaining + 1)
        max_steps = ctx.config.max_steps or ctx.block_size - 1
        slots = [seed] + [MASKED] * (n - 1)
        guess = list(slots)  # current best token per slot, shown for provisional slots
        conf = [1.0] + [0.0] * (n - 1)
        commit_step = [0] + [-1] * (n - 1)
        end = n  # slots at or after `end` are frozen (after a committed EOS)
        emitted = 1  # leading slots already handed to the sequence (the seed was)
        step = 0
        while ctx.running and any(s == MASKED for s in slots[:end]):
            tokens = [ctx.mask_id if s == MASKED else s for s in slots]
            hidden = runner.forward(tokens, Pattern.BIDIRECTIONAL)
            masked = [i for i in range(end) if slots[i] == MASKED]
            ids, cf = ctx.sampler.pick(runner.logits(hidden[masked]), ctx.mask_id)
            chosen = policy.choose(cf, max_steps - step).tolist()
            step += 1
            seq.nfe += 1
            for j, i in enumerate(masked):  # left to right, so nothing commits after a new EOS
                guess[i], conf[i] = int(ids[j]), float(cf[j])
                if chosen[j] and i < end:
                    slots[i], commit_step[i] = guess[i], step
                    if seq.ends_output(slots[i]):
                        end = i + 1
            yield Step(
                kind="denoise",
                block=block,
                step=step,
                nfe=seq.nfe,
                tokens=[s if s != MASKED else g for s, g in zip(slots, guess)],
                committed=[s != MASKED for s in slots],
                confidence=list(conf),
                commit_step=list(commit_step),
                elapsed=seq.elapsed(),
            )
            ready = emitted
            while ready < end and slots[ready] != MASKED:
                ready += 1
            yield from ctx.emit(slots[emitted:ready])
            emitted = ready
        if not ctx.running:
            return
        seed = yield from close_block(ctx, slots, block)
        block += 1


def close_block(ctx: DecodeState, slots: list[int], block: int) -> Iterator[Event]:
    """The causal pass over the finished block: it writes the block's exact K/V and yields the next
    seed. Where the text around the cursor has a copy of what follows, the copy rides along in the
    same pass and is verified as self-speculation verifies a draft: accepted while AR's choice
    agrees, so the block's seed arrives with the accepted copy before it. Returns the seed."""
    seq, runner = ctx.seq, ctx.runner
    copy = ctx.copied(min(ctx.block_size - 1, seq.remaining - 1))  # the seed takes the last slot left
    seq.nfe += 1
    if not copy:
        seed, c = ctx.pick_ar(runner.extend(slots))
        yield ctx.ar_step_event("ar", seed, c, block + 1)
        yield from ctx.emit([seed])
        return seed
    tokens = slots + copy
    hidden = runner.forward(tokens, Pattern.CAUSAL)
    last = len(slots) - 1
    draft = tokens[last:]
    accepted, m = accept(ctx, draft, runner.logits(hidden[last:]))
    runner.keep(tokens[: last + 1 + m])
    seq.copy_drafted += len(copy)
    seq.copy_accepted += m
    yield verify_step(ctx, "verify", block + 1, draft, draft[: m + 1], len(copy))
    yield from ctx.emit(accepted)
    return accepted[-1]
