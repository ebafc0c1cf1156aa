"""`quality`: greedy answers with logprobs from both engines; divergence, KL and perplexity as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from playground.cli.pair import add_pair_options, arena_for, start_both
from playground.engines.client import GenerationError
from playground.engines.server import EngineError
from playground.measure.specs import SpecError
from playground.store.sqlite import StoreError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `quality` subcommand and its options."""
    qual = sub.add_parser("quality", help="where B's greedy answer departs from A's, KL and perplexity")
    add_pair_options(qual)
    qual.add_argument("--prompt", required=True)
    qual.add_argument("--text", help="a text file both engines score for perplexity")
    qual.add_argument("--max-tokens", type=int, default=64)
    qual.add_argument("--json", action="store_true", help="print the full JSON (per-position KL included)")
    qual.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Greedy answers with logprobs from both engines: divergence, KL, perplexity as JSON."""
    text = None
    try:
        if args.text:
            text = Path(args.text).read_text(encoding="utf-8", errors="replace")
        arena = arena_for(args)
    except (SpecError, StoreError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if not start_both(arena):
            return 1
        try:
            report = arena.insights.quality(args.prompt, max_tokens=args.max_tokens, text=text)
        except (SpecError, EngineError, GenerationError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        out = report.as_dict()
        print(json.dumps(out if args.json else {k: out[k] for k in list(out)[:5]}, indent=2))
        return 0
    finally:
        arena.shutdown()
