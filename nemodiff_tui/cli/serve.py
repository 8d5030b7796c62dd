"""`nemodiff serve`: the engine over HTTP for editors (llama.cpp /infill), OpenAI clients and
remote viewers; see docs/SERVING.md."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from engine.request import MODES
from engine.serve.queue import MAX_QUEUE
from nemodiff_tui.cli.common import add_model_args, load_engine, resolve_settings

DEFAULT_PORT = 8012  # llama.cpp's, which llama.vim and llama.vscode use by default


def port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must lie in [0, 65535], got {number}")
    return number


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve the model over HTTP: /infill, /v1/completions, /v1/denoise")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    add_model_args(p)
    p.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="decoding mode for clients that cannot choose one (default: the settings file's, else auto)",
    )
    p.add_argument("--api-key", default=None, help="require Authorization: Bearer KEY (not on /health)")
    p.add_argument(
        "--max-queue",
        type=int,
        default=MAX_QUEUE,
        help=f"requests held at once, the running one included; more get 503 (default {MAX_QUEUE})",
    )
    p.set_defaults(run=run)


def exposed(host: str) -> bool:
    """Whether `host` listens beyond this machine."""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from engine.serve.app import create_app

    if args.max_queue < 1:
        raise ValueError(f"--max-queue must be at least 1, got {args.max_queue}")
    if exposed(args.host) and not args.api_key:
        print(
            f"nemodiff: warning: serving on {args.host} without --api-key: anyone who can reach it can use it",
            file=sys.stderr,
        )
    eng = load_engine(args)
    mode = resolve_settings(args).settings.mode
    app = create_app(eng, mode=mode, api_key=args.api_key, max_queue=args.max_queue)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
