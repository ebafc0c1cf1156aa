"""`compare`: one prompt to both engines, the figures as JSON or the answers as text."""

from __future__ import annotations

import argparse
import json
import sys

from playground.cli.pair import add_pair_options, arena_for, start_both
from playground.measure.generation import MODES, GenerationParams
from playground.measure.specs import SpecError
from playground.store.sqlite import StoreError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `compare` subcommand and its options."""
    cmp = sub.add_parser("compare", help="send one prompt to two engines and report the figures")
    add_pair_options(cmp)
    cmp.add_argument("--prompt", required=True)
    cmp.add_argument("--mode", choices=MODES, default="fair")
    cmp.add_argument("--max-tokens", type=int, default=64)
    cmp.add_argument("--temperature", type=float, default=0.0)
    cmp.add_argument("--top-p", type=float, default=1.0)
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--completion", action="store_true", help="plain completion instead of chat")
    cmp.add_argument("--json", action="store_true", help="print one JSON object")
    cmp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start both engines, send one prompt, print the figures as JSON, stop the engines."""
    params = GenerationParams(
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        chat=not args.completion,
    )
    try:
        arena = arena_for(args)
        if problems := arena.door.problems(args.prompt, params, args.mode):
            raise SpecError("; ".join(problems))
    except (SpecError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        failed = not start_both(arena)
        answers = arena.compare_once(args.prompt, params, args.mode)
        arena.watch.sample_once()
        for ans in answers:
            if ans.error:
                print(f"error: engine {ans.slot}: {ans.error}", file=sys.stderr)
                failed = True
        if args.json:
            print(json.dumps({"mode": args.mode, "engines": [a.as_dict() for a in answers]}, indent=2))
        else:
            for ans in answers:
                print(f"--- {ans.label}\n{ans.text}\n")
        return 1 if failed else 0
    finally:
        arena.shutdown()
