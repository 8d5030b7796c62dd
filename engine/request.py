"""What a caller asks for: the text to complete and how to generate it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from engine.errors import RequestError

MODES = ("auto", "ar", "diffusion", "self-spec")
SCHEDULES = ("threshold", "even")
SPECULATIONS = ("linear", "quadratic")
MAX_BLOCK = 256  # NLD uses 32; a quadratic pass holds B x (B+1) tokens
MAX_TEMPERATURE = 100.0  # far past where sampling is uniform noise; a larger one overflows the softmax
MAX_STOPS, MAX_STOP_CHARS = 16, 256  # each generated token is checked against every stop string
SEED_RANGE = range(-(2**63), 2**64)  # what torch.Generator.manual_seed takes


@dataclass
class GenerationConfig:
    """How to generate. `mode = "self-spec"` is the one line that picks the decoding mode."""

    mode: str = "auto"
    speculation: str = "linear"
    block_size: int | None = None  # None: the checkpoint's default
    threshold: float | None = None  # diffusion commit threshold; None: the checkpoint's default
    schedule: str = "threshold"  # diffusion: "threshold", or "even" (same count every step)
    max_steps: int | None = None  # diffusion: denoising steps per block (default block_size - 1)
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    heal: bool = True  # token healing at the cursor
    copy_drafts: bool = True  # self-spec and diffusion: also draft from copies of the text around the cursor
    auto_diffusion: bool = False  # `auto` may pick diffusion where it is fastest (not lossless against AR)

    def validate(self) -> "GenerationConfig":
        if self.mode not in MODES:
            raise RequestError(f"unknown mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if self.speculation not in SPECULATIONS:
            raise RequestError(f"unknown speculation {self.speculation!r}: choose linear or quadratic")
        if self.schedule not in SCHEDULES:
            raise RequestError(f"unknown schedule {self.schedule!r}: choose threshold or even")
        if self.max_new_tokens <= 0:
            raise RequestError(f"max_new_tokens must be positive, got {self.max_new_tokens}")
        if self.block_size is not None and not 2 <= self.block_size <= MAX_BLOCK:
            raise RequestError(f"block_size must lie in [2, {MAX_BLOCK}], got {self.block_size}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise RequestError(f"max_steps must be positive, got {self.max_steps}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise RequestError(f"threshold must lie in [0, 1], got {self.threshold}")
        if not 0 <= self.temperature <= MAX_TEMPERATURE:  # NaN fails this too
            raise RequestError(f"temperature must lie in [0, {MAX_TEMPERATURE:g}], got {self.temperature}")
        if self.seed is not None and self.seed not in SEED_RANGE:
            raise RequestError(f"seed must be a 64-bit integer, got {self.seed}")
        if len(self.stop) > MAX_STOPS or any(len(s) > MAX_STOP_CHARS for s in self.stop):
            raise RequestError(
                f"at most {MAX_STOPS} stop strings of at most {MAX_STOP_CHARS} characters each"
            )
        if not 0.0 < self.top_p <= 1.0:
            raise RequestError(f"top_p must lie in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise RequestError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        return self

    def replace(self, **changes) -> "GenerationConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class ContextChunk:
    """Text from another file the completion may draw on (an editor's recently used code)."""

    filename: str = "tmp"
    text: str = ""


@dataclass
class Request:
    """Plain completion of `prompt`, fill-in-the-middle between `prefix` and `suffix`, or the
    next turn of a chat (`messages`: `{"role", "content"}` dicts, rendered by the tokenizer's
    chat template). `context` chunks (oldest first) go before the prompt, within a share of it
    (engine/prompts/fim.py, CONTEXT_SHARE)."""

    prompt: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    config: GenerationConfig = field(default_factory=GenerationConfig)
    context: list[ContextChunk] = field(default_factory=list)
    messages: list[dict[str, str]] | None = None

    @property
    def is_fim(self) -> bool:
        return self.suffix is not None
