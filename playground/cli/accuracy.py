"""`python -m playground eval`: accuracy with lm-eval on two engines, as the Accuracy tab runs it."""

from __future__ import annotations

import argparse
import json
import sys

from playground.cli.pair import add_pair_options, arena_for, start_both
from playground.engines.server import EngineError
from playground.measure.specs import SpecError
from playground.store.sqlite import StoreError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `eval` subcommand and its options."""
    ev = sub.add_parser("eval", help="accuracy on a multiple-choice task with lm-eval, A against B")
    add_pair_options(ev)
    ev.add_argument("--task", required=True, help="stdlib_docstrings (shipped), an lm-eval task, a .yaml/.jsonl")
    ev.add_argument("--limit", type=int, help="score only the first N items (default: all)")
    ev.add_argument("--fewshot", type=int, default=0, help="few-shot examples before each item (default 0)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start both engines, score each with lm-eval, print the report, stop the engines."""
    from playground.arena.accuracy import PAIR, check_request

    if problems := check_request(args.task, args.limit, args.fewshot):
        print(f"error: {'; '.join(problems)}", file=sys.stderr)
        return 2
    try:
        arena = arena_for(args)
    except (SpecError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if not start_both(arena):
            return 1
        last = [""]
        final = None
        for step in arena.accuracy.run(args.task, limit=args.limit, fewshot=args.fewshot, engines=PAIR):
            if step.text != last[0]:
                print(f"[eval] {step.fraction:4.0%} {step.text}", file=sys.stderr, flush=True)
                last[0] = step.text
            final = step
        if final is None or final.error or final.report is None:
            print(f"error: {final.error if final else 'no result'}", file=sys.stderr)
            return 1
        out = final.report.as_dict()
        if args.json:
            print(json.dumps(out, indent=2))
        else:
            for engine in out["engines"]:
                print(f"{engine['label']}: {engine['accuracy']:.3f} ± {engine['stderr']:.3f} ({engine['items']} items)")
            print(f"recovery {out['recovery']}, difference 95 % interval {out['difference_ci95']}")
        return 0
    except (SpecError, EngineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        arena.shutdown()
