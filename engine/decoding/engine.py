"""The engine: one loaded model serving generation requests as streams of events."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from engine.decoding.copy_draft import CopyDrafter
from engine.decoding.modes.auto import auto_policy
from engine.decoding.modes.run import run
from engine.decoding.modes.state import DecodeState
from engine.decoding.runner import HFRunner, NativeRunner
from engine.decoding.sampling import Sampler
from engine.decoding.sequence import Sequence
from engine.errors import RequestError
from engine.events import Done, Event, Note
from engine.prompts import fim
from engine.prompts.healing import HealConstraint, heal_prompt
from engine.prompts.tokenizer import Tokenizer
from engine.request import GenerationConfig, Request

SMALL_MODEL_PARAMS = 100_000_000


def cpu_threads_for(model) -> None:
    """Small models run on one CPU thread unless OMP_NUM_THREADS says otherwise: their matmuls are
    too small to split, and OpenMP's fan-out costs more than it saves (docs/BENCHMARKS.md)."""
    if (
        "OMP_NUM_THREADS" not in os.environ
        and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
    ):
        torch.set_num_threads(1)


@dataclass
class Prompt:
    """A request's prompt ids, the token-healing constraint for what was backed off, notes, whether
    anything was cut to fit, and how many context chunks (and their tokens) made it in."""

    ids: list[int]
    heal: HealConstraint | None = None
    notes: list[str] = field(default_factory=list)
    truncated: bool = False
    context_chunks: int = 0
    context_tokens: int = 0


class Generation:
    """An iterator of events for one request; `cancel()` (from any thread) stops it within one forward."""

    def __init__(self, run: Callable[[Callable[[], bool]], Iterator[Event]]):
        self._cancel = threading.Event()
        self._events = run(
            self._cancel.is_set
        )  # a generator: nothing runs before the first event is asked for

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def __next__(self) -> Event:
        return next(self._events)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def close(self) -> None:
        self._events.close()


class Engine:
    def __init__(self, loaded):
        self.name = loaded.name
        self.native = loaded.native
        self.device = loaded.device
        self.dtype = "int8" if loaded.int8 else str(loaded.dtype).removeprefix("torch.")  # for reports
        self.model = loaded.model.eval().requires_grad_(False)
        if self.device.type == "cpu":  # before auto's timing (int8 weights are no parameters; embeddings are)
            cpu_threads_for(self.model)
        self.model_config = loaded.config
        self.lora_loaded = loaded.lora_loaded
        mask_id = loaded.config.mask_token_id if loaded.native else None
        eos_id = loaded.config.eos_token_id if loaded.native else None
        self.tokenizer = Tokenizer(loaded.tokenizer, eos_id=eos_id, mask_id=mask_id)
        self.fim_format = fim.detect(self.tokenizer, spm=loaded.native and loaded.config.fim_order == "spm")
        if loaded.native and not loaded.int8:  # int8 weights load fused (engine/model/quantize.py)
            self.model.fuse_projections()
        self.runner = NativeRunner(loaded.model) if loaded.native else HFRunner(loaded.model, mask_id)
        self.default_block_size = loaded.config.block_size if loaded.native else 32
        self.auto = (
            auto_policy(self.runner, self.default_block_size, mask_id, loaded.weight_files, self.dtype)
            if loaded.native
            else None
        )
        self.default_threshold = loaded.config.threshold if loaded.native else 0.9
        self._lock = threading.Lock()

    def generate(self, request: Request) -> Generation:
        return Generation(functools.partial(self._run, request))

    def complete(self, request: Request) -> Done:
        """Run a request to the end and return its final event."""
        done = None
        for event in self.generate(request):
            if isinstance(event, Done):
                done = event
        return done

    # -- internals ---------------------------------------------------------------------------

    def resolve_mode(self, config: GenerationConfig) -> tuple[str, list[str]]:
        """The mode that will actually run ("ar", "diffusion", "self-spec-linear", ...), and notes."""
        if not self.native:
            if config.mode in ("ar", "auto"):
                return "ar", []
            return "ar", [
                f"{self.name} is not an NLD checkpoint: mode {config.mode!r} is unavailable, running AR"
            ]
        if config.mode == "auto":  # by device, timing and recent acceptance (engine/decoding/modes/auto.py)
            mode = self.auto.mode(diffusion=config.auto_diffusion)
            notes = {
                "ar": ["auto: recent drafts have not outrun AR on this device; running AR"],
                "diffusion": [
                    "auto: diffusion (allowed by auto_diffusion) is the fastest mode on this device"
                ],
            }
            return mode, notes.get(mode, [])
        return (f"self-spec-{config.speculation}" if config.mode == "self-spec" else config.mode), []

    @property
    def context_window(self) -> int:
        """Positions the model was trained for: prompts are trimmed to fit with the completion."""
        if self.native:
            return self.model_config.max_position_embeddings
        return getattr(self.model.config, "max_position_embeddings", None) or 4096

    @property
    def stop_ids(self) -> set[int]:
        """Tokens that end every completion: EOS and a FIM model's control tokens. Such a model may
        open a new FIM example (or file) mid-completion, plain or not; shown, it reads "<fim_suffix>"."""
        fim_stops = self.fim_format.stop_ids(self.tokenizer) if self.fim_format else set()
        return fim_stops | {self.tokenizer.eos_id}

    def _prompt(self, request: Request, budget: int) -> Prompt:
        """The prompt within `budget` tokens: context chunks first (at most CONTEXT_SHARE of the
        budget), then the request's own text in what is left."""
        tok, heal = self.tokenizer, request.config.heal
        if request.messages is not None:
            return Prompt(self._chat_ids(request, budget))
        notes: list[str] = []
        fim_format = self.fim_format if request.is_fim else None
        if request.is_fim and fim_format is None:
            notes.append(f"{self.name} has no fill-in-the-middle tokens: completing the prefix only")
        room = budget - (fim_format.overhead(tok) if fim_format else len(tok.template_prefix))
        context, chunks = fim.context_ids(
            tok, self.fim_format, request.context, int(room * fim.CONTEXT_SHARE)
        )
        room -= len(context)
        if chunks < len(request.context):
            notes.append(
                f"{len(request.context) - chunks} of {len(request.context)} context chunks (the oldest) "
                f"left out to fit the context window ({self.context_window})"
            )
        if fim_format is not None:
            prefix, suffix = fim.fit(tok, request.prefix or "", request.suffix, room)
            trimmed = (prefix, suffix) != (request.prefix or "", request.suffix)
            if trimmed:
                notes.append(
                    f"context trimmed around the cursor to fit the context window ({self.context_window})"
                )
            prefix, constraint = heal_prompt(tok, prefix) if heal else (prefix, None)
            return Prompt(
                fim_format.ids(tok, prefix, suffix, context),
                constraint,
                notes,
                trimmed or chunks < len(request.context),
                chunks,
                len(context),
            )
        text = request.prompt if request.prompt is not None else (request.prefix or "")
        kept, constraint = heal_prompt(tok, text) if heal else (text, None)
        body = tok.encode(kept)
        truncated = len(body) > room
        if truncated:
            notes.append(f"prompt truncated to its last {room} tokens (context window {self.context_window})")
            body = body[len(body) - room :] if room > 0 else []
        ids = tok.template_prefix + context + body
        if not ids:
            ids = [tok.bos_id if tok.bos_id is not None else tok.eos_id]
        return Prompt(
            ids, constraint, notes, truncated or chunks < len(request.context), chunks, len(context)
        )

    def _chat_ids(self, request: Request, budget: int) -> list[int]:
        """A chat's prompt, whole: a template cut to fit would be no conversation."""
        ids = self.tokenizer.chat_ids(request.messages)
        if len(ids) > budget:
            raise RequestError(
                f"the conversation is {len(ids)} tokens; the context window ({self.context_window}) "
                f"leaves {budget} for it with {request.config.max_new_tokens} new tokens"
            )
        return ids

    def _budget(self, config: GenerationConfig) -> int:
        """Prompt tokens the window leaves beside the completion; the same prompt in every mode."""
        window = self.context_window
        return max(window // 2, window - config.max_new_tokens)

    def validate(self, request: Request) -> GenerationConfig:
        """The request's config with the checkpoint's defaults filled in; RequestError if unservable
        (the cache is sized for the request up front, so a huge token count must not get that far)."""
        config = request.config.validate()
        if request.messages is not None and (request.prompt, request.prefix, request.suffix) != (
            None,
            None,
            None,
        ):
            raise RequestError("give messages, or a prompt, or a prefix and suffix: not several")
        if request.messages is not None and not self.tokenizer.chat_template:
            raise RequestError(
                f"{self.name} has no chat template, so it cannot chat: use it for completion and "
                "fill-in-the-middle, or load an instruct checkpoint"
            )
        if config.max_new_tokens > self.context_window:
            raise RequestError(
                f"at most {self.context_window} new tokens (the model's context window), "
                f"asked for {config.max_new_tokens}"
            )
        if request.messages is not None:  # checked here so a server answers 400 before it streams
            self._chat_ids(request, self._budget(config))
        return config.replace(
            block_size=config.block_size or self.default_block_size,
            threshold=self.default_threshold if config.threshold is None else config.threshold,
        )

    def _run(self, request: Request, cancelled: Callable[[], bool]) -> Iterator[Event]:
        config = self.validate(request)
        prompt = self._prompt(request, self._budget(config))
        ids, heal, prompt_notes = prompt.ids, prompt.heal, prompt.notes
        with self._lock:
            # Decided here, not when queued, so `auto` sees the cycles of the generation just before.
            mode, notes = self.resolve_mode(config)
            auto = self.auto if config.mode == "auto" else None
            if auto is not None:
                auto.started(mode)
            notes += prompt_notes
            for message in notes:
                yield Note(message)
            tok = self.tokenizer
            # A chat turn ends at any control token (its template's end of turn, whatever EOS says).
            chat = request.messages is not None
            stop_ids = self.stop_ids | (tok.special_ids - {tok.mask_id}) if chat else self.stop_ids
            seq = Sequence(tok, ids, config.max_new_tokens, stop_ids, config.stop, heal)
            block = config.block_size
            copies = config.copy_drafts and (mode.startswith("self-spec") or mode == "diffusion")
            # tokens in one pass: a quadratic pass, or a diffusion block closed with a copy after it
            widest = {"self-spec-quadratic": block * (block + 1), "diffusion": 2 * block}.get(mode, block)
            self.runner.reserve(len(ids) + config.max_new_tokens + block + 1, widest, block)
            cached = self.runner.reuse(ids)
            sampler = Sampler(config.temperature, config.top_p, config.seed, self.device, config.top_k)
            copy = CopyDrafter(ids) if copies else None
            ctx = DecodeState(self.runner, seq, sampler, config, block, tok.mask_id, cancelled, auto, copy)
            yield from run(ctx, mode, ids[cached:])
            if auto is not None and mode == "diffusion":
                auto.record_diffusion(len(seq.out), seq.nfe)
            yield seq.done(
                mode,
                notes,
                prompt_token_ids=ids,
                tokens_cached=cached,
                truncated=prompt.truncated,
                context_chunks=prompt.context_chunks,
                context_tokens=prompt.context_tokens,
                prefill_passes=self.runner.passes(len(ids) - cached),
            )
