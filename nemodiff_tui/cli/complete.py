"""`nemodiff complete`: one completion or fill-in-the-middle from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import RequestError
from nemodiff_tui.completion import Context, cut
from nemodiff_tui.cli.common import (add_backend_args, add_generation_args, add_model_args, generation_config,
                                     open_engine, text_arg)


def register(sub) -> None:
    p = sub.add_parser("complete", help="complete a prompt, or fill in the middle between --prefix and --suffix")
    p.add_argument("--prompt", help="text to complete (or --prompt-file, or stdin)")
    p.add_argument("--prompt-file")
    p.add_argument("--prefix", help="fill-in-the-middle: the text before the cursor, taken literally "
                   "(in bash, $'if x:\\n' ends in a newline)")
    p.add_argument("--prefix-file")
    p.add_argument("--suffix", help="fill-in-the-middle: the text after the cursor")
    p.add_argument("--suffix-file")
    add_model_args(p)
    add_backend_args(p)
    add_generation_args(p)
    p.add_argument("--raw", action="store_true",
                   help="fill-in-the-middle: print the whole generation, not stopping where the code "
                        "dedents below the cursor's block (or at the line's end when text follows the cursor)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object with the result and statistics")
    out.add_argument("--stream", action="store_true", help="print every engine event as one JSON line")
    p.set_defaults(run=run)


def build_request(args: argparse.Namespace):
    from engine import Request

    prefix = text_arg(args.prefix, args.prefix_file, "prefix")
    suffix = text_arg(args.suffix, args.suffix_file, "suffix")
    config = generation_config(args)
    if prefix is not None or suffix is not None:
        return Request(prefix=prefix or "", suffix=suffix or "", config=config)
    prompt = text_arg(args.prompt, args.prompt_file, "prompt", stdin=True)
    if prompt is None:
        raise RequestError("nothing to complete: give --prompt, --prompt-file, stdin, or --prefix/--suffix")
    return Request(prompt=prompt, config=config)


def suggestion_context(prefix: str, suffix: str) -> Context:
    """The cursor's surroundings, as the app sees them, for its stop rules."""
    rest_of_line, _, below = suffix.partition("\n")
    following = next((line for line in below.split("\n") if line.strip()), "")
    return Context(prefix, suffix, prefix.rpartition("\n")[2], rest_of_line, following)


def run(args: argparse.Namespace) -> int:
    from engine.events import Commit, Done, to_json

    request = build_request(args)
    eng = open_engine(args)
    ctx = suggestion_context(request.prefix or "", request.suffix) if request.is_fim and not args.raw else None
    generation = eng.generate(request)
    text = ""
    done, stopped = None, False
    for event in generation:
        if args.stream:
            print(json.dumps(to_json(event)), flush=True)
        elif isinstance(event, Commit) and not stopped:
            text += event.text
            if ctx is not None:
                text, stopped = cut(text, ctx, max_lines=None)
                if stopped:
                    generation.cancel()  # the engine stops within one forward pass
            elif not args.json:  # a plain completion prints as it commits; a FIM one once the rules
                sys.stdout.write(event.text)  # are done with it (a loop is only known rounds later)
                sys.stdout.flush()
        if isinstance(event, Done):
            done = event
    if args.json:
        result = {
            "text": text if ctx is not None else done.text, "prompt_token_ids": done.prompt_token_ids,
            "token_ids": done.token_ids, "n_tokens": done.n_tokens, "nfe": done.nfe,
            "tokens_per_forward": done.tokens_per_forward, "seconds": done.seconds,
            "tokens_per_second": done.tokens_per_second, "mode": done.mode, "model": eng.name,
            "device": str(eng.device), "stop_reason": "stop_rule" if stopped else done.stop_reason,
            "accepted_histogram": done.accepted_histogram, "copy_drafted": done.copy_drafted,
            "copy_accepted": done.copy_accepted, "notes": done.notes,
        }
        print(json.dumps(result))
    elif not args.stream:
        for note in done.notes:
            print(f"note: {note}", file=sys.stderr)
        sys.stdout.write(text.rstrip() + "\n" if ctx is not None else "\n")
    return 0
