"""Arguments shared by the commands, and the settings every command runs with."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.errors import NemodiffError, RequestError
from engine.request import MODES, SCHEDULES, SPECULATIONS, GenerationConfig
from nemodiff_tui.config import Settings, config_path, load_settings


MODEL_HELP = "checkpoint directory, Hugging Face repo id, or 'demo' (default: the settings file's, else demo)"
DEVICE_HELP = "auto, cpu, cuda, cuda:1, ... (default: the settings file's, else auto)"
DTYPE_HELP = (
    "bf16, fp16, fp32, or int8 (CPU: int8 matmul weights, and on x86 each matmul's input rounded to "
    "int8 per token; default: the settings file's, else bf16 on CUDA and on CPUs with native bf16, "
    "else fp32)"
)


def positive(value: str) -> int:
    """An argparse type: an integer of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument("--dtype", default=None, help=DTYPE_HELP)
    p.add_argument(
        "--kernels",
        choices=("auto", "triton", "torch"),
        default=None,
        help="kernel backend (default: $NEMODIFF_KERNELS or auto)",
    )


def add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        metavar="URL",
        default=None,
        help="use an OpenAI-compatible server (nemodiff serve, SGLang) instead of a local model",
    )
    p.add_argument(
        "--backend-key",
        metavar="KEY",
        default=os.environ.get("NEMODIFF_BACKEND_KEY"),
        help="bearer token for --backend (default: $NEMODIFF_BACKEND_KEY)",
    )


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="settings file (default: $XDG_CONFIG_HOME/nemodiff/config.toml)",
    )


@dataclass(frozen=True)
class Resolved:
    settings: Settings  # the file's settings under the command line's flags
    problems: list[str]  # what was wrong in the file (its defaults stand in)
    path: Path  # the settings file read (or that would have been)


FLAGS = ("model", "device", "dtype", "mode", "theme")  # the flags that are also settings


def resolve_settings(args: argparse.Namespace) -> Resolved:
    """The settings of this invocation, resolved once (the CLI's entry does it first) and kept on
    `args`: each flag given wins over the settings file (`--config`, else the XDG path), which
    wins over the defaults; one rule for the app and every command."""
    resolved = getattr(args, "resolved", None)
    if resolved is None:
        given = getattr(args, "config", None)
        path = given or config_path()
        if given is not None and not path.is_file():
            raise NemodiffError(f"no settings file at {path}")
        settings, problems = load_settings(path)
        flags = {name: value for name in FLAGS if (value := getattr(args, name, None)) is not None}
        resolved = args.resolved = Resolved(settings.replace(**flags), problems, path)
    return resolved


def load_engine(args: argparse.Namespace):
    """The local engine of `--model`/`--device`/`--dtype`, else of the settings file."""
    import engine

    settings = resolve_settings(args).settings
    apply_kernels(args)
    return engine.load(settings.model, device=settings.device, dtype=settings.dtype)


def open_engine(args: argparse.Namespace):
    """The engine a command runs on: the remote `--backend`, or the local model."""
    if getattr(args, "backend", None):
        from engine.decoding.remote import connect

        return connect(args.backend, api_key=args.backend_key)
    return load_engine(args)


def add_generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mode", choices=MODES, default=None, help="decoding mode (default: the settings file's, else auto)"
    )
    p.add_argument("--speculation", choices=SPECULATIONS, default="linear", help="self-spec variant")
    p.add_argument(
        "--block-size", type=int, default=None, help="tokens per block (default: the checkpoint's)"
    )
    p.add_argument(
        "--threshold", type=float, default=None, help="diffusion commit threshold (default: the checkpoint's)"
    )
    p.add_argument("--schedule", choices=SCHEDULES, default="threshold", help="diffusion commit schedule")
    p.add_argument(
        "--max-steps", type=int, default=None, help="diffusion steps per block (default: block size - 1)"
    )
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument("--no-heal", action="store_true", help="disable token healing at the cursor")
    p.add_argument(
        "--no-copy-drafts",
        action="store_true",
        help="draft only with the model (self-spec, diffusion), not from copies of the text around the cursor",
    )
    p.add_argument(
        "--auto-diffusion",
        action="store_true",
        help="let --mode auto pick diffusion where it is the fastest (its output is not AR's; "
        "default: the settings file's auto_diffusion)",
    )


def generation_config(args: argparse.Namespace, mode: str | None = None) -> GenerationConfig:
    """`mode` if the caller picks one, else `--mode`, else the settings file's."""
    settings = resolve_settings(args).settings
    return GenerationConfig(
        mode=mode or settings.mode,
        speculation=args.speculation,
        block_size=args.block_size,
        threshold=args.threshold,
        schedule=args.schedule,
        max_steps=args.max_steps,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        stop=args.stop,
        heal=not args.no_heal,
        copy_drafts=not args.no_copy_drafts,
        auto_diffusion=args.auto_diffusion or settings.auto_diffusion,
    ).validate()


def apply_kernels(args: argparse.Namespace) -> None:
    """`--kernels`, then a check of the backend asked for (by the flag or NEMODIFF_KERNELS), so a
    missing Triton is one line before the model loads, not a traceback at the first forward."""
    from kernels.dispatch import backend, set_backend

    if getattr(args, "kernels", None):
        set_backend(args.kernels)
    backend()


def utf8(data: bytes, what: str) -> str:
    """Decode user input strictly: undecodable bytes are an error, never silently replaced."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(
            f"{what} is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
        ) from None


def text_arg(value: str | None, path: str | None, what: str, stdin: bool = False) -> str | None:
    """A text given inline (`--x`), as a file (`--x-file`), or on stdin."""
    if value is not None:
        return utf8(value.encode("utf-8", "surrogateescape"), what)
    if path is not None:
        try:
            with open(path, "rb") as f:
                return utf8(f.read(), f"{what} file {path}")
        except OSError as e:
            raise RequestError(f"cannot read {what} file {path}: {e.strerror}") from None
    if stdin and not sys.stdin.isatty():
        return utf8(sys.stdin.buffer.read(), f"{what} on stdin")
    return None
