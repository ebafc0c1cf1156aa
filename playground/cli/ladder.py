"""`ladder`: several variants of one model measured the same way, one row each."""

from __future__ import annotations

import argparse
import json
import sys

from playground.arena.defaults import neutral_spec, use_storage
from playground.measure.specs import SpecError, parse_spec
from playground.store.sqlite import StoreError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `ladder` subcommand and its options."""
    lad = sub.add_parser("ladder", help="several variants of one model measured the same way, one row each")
    lad.add_argument(
        "--variant", action="append", required=True, help="MODEL[,key=value...] (2 to 6; label=... names it)"
    )
    lad.add_argument("--baseline", help="label of the variant the others are held against (default: the first)")
    lad.add_argument("--max-tokens", type=int, default=24, help="greedy tokens per prompt for agreement and KL")
    lad.add_argument("--requests", type=int, default=3, help="timed requests per variant (the median is kept)")
    lad.add_argument("--no-perplexity", action="store_true", help="skip perplexity on the reference text")
    lad.add_argument("--json", action="store_true", help="print one JSON object")
    lad.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Every variant measured the same way: the baseline in A, each other in B in turn; JSON rows."""
    from playground.arena.core import Arena
    from playground.arena.defaults import ASSETS
    from playground.engines.monitor import device_info

    device = device_info()
    try:
        specs = [parse_spec(v, base=neutral_spec(device)) for v in args.variant]
        if len(specs) < 2:
            raise SpecError("give at least two --variant specs")
        arena = Arena(specs[:2], data_dir=use_storage().data, device=device, sample_interval_s=0.5)
    except (SpecError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        for spec in specs[2:]:
            arena.variants.add(spec)
        baseline = args.baseline or next(iter(arena.variants.specs))
        text = (ASSETS / "reference.txt").read_text() if not args.no_perplexity else None
        rows = []
        for step in arena.ladder.run(baseline, text=text, max_tokens=args.max_tokens, timing_requests=args.requests):
            print(f"[ladder] {step.message}", file=sys.stderr, flush=True)
            rows = step.rows
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        arena.shutdown()
    failed = [r for r in rows if r.error]
    for r in failed:
        print(f"error: {r.label}: {r.error}", file=sys.stderr)
    if args.json:
        print(json.dumps({"baseline": baseline, "variants": [r.as_dict() for r in rows]}, indent=2))
    else:
        for r in rows:
            print(f"{r.label}: weights {r.weights_gb} GB, decode {r.decode_tok_s} tok/s, KL {r.kl_mean}")
    return 1 if failed or len(rows) < len(arena.variants.specs) else 0
