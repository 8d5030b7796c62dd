"""`nemodiff complete`: one completion or fill-in-the-middle from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import RequestError
from nemodiff_tui.cli.common import (
    add_backend_args,
    add_generation_args,
    add_model_args,
    generation_config,
    open_engine,
    resolve_settings,
    text_arg,
)


def register(sub) -> None:
    p = sub.add_parser(
        "complete", help="complete a prompt, or fill in the middle between --prefix and --suffix"
    )
    p.add_argument("--prompt", help="text to complete (or --prompt-file, or stdin)")
    p.add_argument("--prompt-file")
    p.add_argument(
        "--prefix",
        help="fill-in-the-middle: the text before the cursor, taken literally "
        "(in bash, $'if x:\\n' ends in a newline)",
    )
    p.add_argument("--prefix-file")
    p.add_argument("--suffix", help="fill-in-the-middle: the text after the cursor")
    p.add_argument("--suffix-file")
    add_model_args(p)
    add_backend_args(p)
    add_generation_args(p)
    p.add_argument(
        "--raw",
        action="store_true",
        help="fill-in-the-middle: print the whole generation, without the editor's stop rules "
        "(the code dedenting below the cursor's block, the line's end when text follows the "
        "cursor, the bracket right of the cursor, a loop, max_lines of the settings file)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--json", action="store_true", help="print one JSON object with the result and statistics"
    )
    out.add_argument("--stream", action="store_true", help="print every engine event as one JSON line")
    p.set_defaults(run=run)


def build_request(args: argparse.Namespace):
    from engine import Request

    prefix = text_arg(args.prefix, args.prefix_file, "prefix")
    suffix = text_arg(args.suffix, args.suffix_file, "suffix")
    config = generation_config(args)
    if prefix is not None or suffix is not None:
        if not prefix and not suffix:
            raise RequestError("nothing to fill in: --prefix and --suffix are both empty")
        return Request(prefix=prefix or "", suffix=suffix or "", config=config)
    prompt = text_arg(args.prompt, args.prompt_file, "prompt", stdin=True)
    if not prompt:  # none, or empty (an empty pipe): there is nothing to complete
        raise RequestError("nothing to complete: give --prompt, --prompt-file, stdin, or --prefix/--suffix")
    return Request(prompt=prompt, config=config)


def run(args: argparse.Namespace) -> int:
    from engine.events import Commit, Done, to_json
    from engine.prompts.suggestion import Context, Pipeline, Rules

    request = build_request(args)
    eng = open_engine(args)
    pipeline = None
    if request.is_fim and not args.raw and not args.stream:  # the suggestion an editor would show
        pipeline = Pipeline(
            Context.around(request.prefix or "", request.suffix),
            Rules(max_lines=resolve_settings(args).settings.max_lines),
        )
        request = pipeline.request(request.config)
    generation = eng.generate(request)
    done = None
    for event in pipeline.follow(generation) if pipeline is not None else generation:
        if args.stream:
            print(json.dumps(to_json(event)), flush=True)
        elif isinstance(event, Commit) and pipeline is None and not args.json:
            sys.stdout.write(event.text)  # a plain completion prints as it commits; a FIM one once the
            sys.stdout.flush()  # pipeline is done with it (a loop is only known rounds later)
        if isinstance(event, Done):
            done = event
    if args.json:
        result = {
            "text": pipeline.suggestion if pipeline is not None else done.text,
            "prompt_token_ids": done.prompt_token_ids,
            "token_ids": done.token_ids,
            "n_tokens": done.n_tokens,
            "nfe": done.nfe,
            "tokens_per_forward": done.tokens_per_forward,
            "seconds": done.seconds,
            "tokens_per_second": done.tokens_per_second,
            "mode": done.mode,
            "model": eng.name,
            "device": str(eng.device),
            "stop_reason": "stop_rule" if pipeline is not None and pipeline.final else done.stop_reason,
            "accepted_histogram": done.accepted_histogram,
            "copy_drafted": done.copy_drafted,
            "copy_accepted": done.copy_accepted,
            "notes": done.notes,
        }
        print(json.dumps(result))
    elif not args.stream:
        for note in done.notes:
            print(f"note: {note}", file=sys.stderr)
        sys.stdout.write(pipeline.suggestion + "\n" if pipeline is not None else "\n")
    return 0
