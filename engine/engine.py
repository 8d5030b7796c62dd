"""The engine: one loaded model serving generation requests as streams of events."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import torch

from engine import fim
from engine.errors import RequestError
from engine.events import Done, Event, Note
from engine.healing import HealConstraint, heal_prompt
from engine.modes.ar import run_ar
from engine.modes.auto import auto_policy
from engine.modes.context import Context
from engine.modes.diffusion import run_diffusion
from engine.modes.self_spec import run_linear, run_quadratic
from engine.quantize import quantize_int8
from engine.request import GenerationConfig, Request
from engine.runner import HFRunner, NativeRunner
from engine.sampling import Sampler
from engine.sequence import Sequence
from engine.tokenizer import Tokenizer

SMALL_MODEL_PARAMS = 100_000_000


def cpu_threads_for(model) -> None:
    """Small models run on one CPU thread unless OMP_NUM_THREADS says otherwise: their matmuls are
    too small to split, and OpenMP's fan-out costs more than it saves (measured 80x slower on a
    busy 2-core machine for a 32-token pass of the tiny model)."""
    if "OMP_NUM_THREADS" not in os.environ and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS:
        torch.set_num_threads(1)


class Generation:
    """An iterator of events for one request; `cancel()` (from any thread) stops it within one forward."""

    def __init__(self, engine: "Engine", request: Request):
        self._cancel = threading.Event()
        self._events = engine._run(request, self._cancel.is_set)

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
        if self.device.type == "cpu":  # before the timing of `auto` and before int8 hides the weights' size
            cpu_threads_for(self.model)
        self.model_config = loaded.config
        self.lora_loaded = loaded.lora_loaded
        mask_id = loaded.config.mask_token_id if loaded.native else None
        eos_id = loaded.config.eos_token_id if loaded.native else None
        self.tokenizer = Tokenizer(loaded.tokenizer, eos_id=eos_id, mask_id=mask_id)
        self.fim_format = fim.detect(self.tokenizer, spm=loaded.native and loaded.config.fim_order == "spm")
        if loaded.native:
            self.model.fuse_projections()
        if loaded.int8:
            quantize_int8(self.model)
        self.runner = NativeRunner(loaded.model) if loaded.native else HFRunner(loaded.model, mask_id)
        self.default_block_size = loaded.config.block_size if loaded.native else 32
        self.auto = auto_policy(self.runner, self.default_block_size, mask_id) if loaded.native else None
        self.default_threshold = loaded.config.threshold if loaded.native else 0.9
        self._lock = threading.Lock()

    def generate(self, request: Request) -> Generation:
        return Generation(self, request)

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
            return "ar", [f"{self.name} is not an NLD checkpoint: mode {config.mode!r} is unavailable, running AR"]
        if config.mode == "auto":  # by device, timing and recent acceptance (engine/modes/auto.py)
            mode = self.auto.mode()
            return mode, (["auto: recent drafts have not outrun AR on this device; running AR"] if mode == "ar" else [])
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

    def _prompt(self, request: Request, budget: int) -> tuple[list[int], HealConstraint | None, list[str], bool]:
        """Prompt ids within `budget` tokens, the token-healing constraint for what was backed
        off, notes, and whether the prompt was cut to fit."""
        tok, heal = self.tokenizer, request.config.heal
        notes: list[str] = []
        if request.is_fim and self.fim_format is None:
            notes.append(f"{self.name} has no fill-in-the-middle tokens: completing the prefix only")
        if request.is_fim and self.fim_format is not None:
            fmt = self.fim_format
            prefix, suffix = fim.fit(tok, request.prefix or "", request.suffix, budget - fmt.overhead(tok))
            trimmed = (prefix, suffix) != (request.prefix or "", request.suffix)
            if trimmed:
                notes.append(f"context trimmed around the cursor to fit the context window ({self.context_window})")
            prefix, constraint = heal_prompt(tok, prefix) if heal else (prefix, None)
            return fmt.ids(tok, prefix, suffix), constraint, notes, trimmed
        text = request.prompt if request.prompt is not None else (request.prefix or "")
        kept, constraint = heal_prompt(tok, text) if heal else (text, None)
        body = tok.encode(kept)
        room = budget - len(tok.template_prefix)
        truncated = len(body) > room
        if truncated:
            notes.append(f"prompt truncated to its last {room} tokens (context window {self.context_window})")
            body = body[len(body) - room:]
        ids = tok.template_prefix + body
        if not ids:
            ids = [tok.bos_id if tok.bos_id is not None else tok.eos_id]
        return ids, constraint, notes, truncated

    def validate(self, request: Request) -> GenerationConfig:
        """The request's config with the checkpoint's defaults filled in; RequestError if unservable
        (the cache is sized for the request up front, so a huge token count must not get that far)."""
        config = request.config.validate()
        if config.max_new_tokens > self.context_window:
            raise RequestError(f"at most {self.context_window} new tokens (the model's context window), "
                               f"asked for {config.max_new_tokens}")
        return config.replace(block_size=config.block_size or self.default_block_size,
                                threshold=self.default_threshold if config.threshold is None else config.threshold)

    def _run(self, request: Request, cancelled) -> Iterator[Event]:
        config = self.validate(request)
        window = self.context_window
        budget = max(window // 2, window - config.max_new_tokens)  # the same prompt in every mode
        ids, heal, prompt_notes, truncated = self._prompt(request, budget)
        with self._lock:
            # Decided here, not when queued, so `auto` sees the cycles of the generation just before.
            mode, notes = self.resolve_mode(config)
            auto = self.auto if config.mode == "auto" else None
            if auto is not None:
                auto.started(mode)
            for message in notes + prompt_notes:
                yield Note(message)
            tok = self.tokenizer
            seq = Sequence(tok, ids, config.max_new_tokens, self.stop_ids, config.stop, heal)
            block = config.block_size
            runner = self.runner
            widest = block * (block + 1) if mode == "self-spec-quadratic" else block  # tokens in one pass
            runner.reserve(len(ids) + config.max_new_tokens + block + 1, widest)
            common = 0
            for a, b in zip(runner.ids, ids[:-1]):
                if a != b:
                    break
                common += 1
            runner.crop(common)
            sampler = Sampler(config.temperature, config.top_p, config.seed, self.device)
            ctx = Context(runner, seq, sampler, config, block, tok.mask_id, cancelled, auto)
            if not cancelled():
                logits = runner.extend(ids[common:])
                first, conf = ctx.pick_ar(logits)
                step = ctx.ar_step_event("prefill", first, conf)
                yield step
                yield from ctx.emit([first])
                if heal is not None:
                    first = yield from run_ar(ctx, first, until=lambda: not heal.active)
                if mode == "ar":
                    yield from run_ar(ctx, first)
                elif mode == "diffusion":
                    yield from run_diffusion(ctx, first)
                elif mode == "self-spec-linear":
                    yield from run_linear(ctx, first)
                else:
                    yield from run_quadratic(ctx, first)
            if not seq.finished:
                seq.stop_reason = "cancelled"
            seconds = seq.elapsed()
            n = len(seq.out)
            yield Done(text=seq.text, token_ids=list(seq.out), n_tokens=n, nfe=seq.nfe,
                       tokens_per_forward=n / max(seq.nfe, 1), seconds=seconds,
                       tokens_per_second=n / seconds if seconds > 0 else 0.0, mode=seq.switched_to or mode,
                       stop_reason=seq.stop_reason, accepted_histogram=dict(sorted(seq.accepted.items())),
                       notes=notes + prompt_notes + seq.notes, prompt_token_ids=ids, tokens_cached=common,
                       truncated=truncated, prefill_passes=runner.passes(len(ids) - common))
