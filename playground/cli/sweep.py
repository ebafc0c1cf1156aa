"""`sweep`: each engine in turn at rising concurrency; throughput and latency per level."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from playground.cli.pair import add_pair_options, arena_for, start_both
from playground.measure.specs import SpecError
from playground.measure.sweep import (
    COLUMNS,
    SweepResult,
    SweepSettings,
    as_json,
    crossover,
    default_settings,
    level_rows,
    parse_levels,
)
from playground.store.sqlite import StoreError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `sweep` subcommand and its options."""
    sw = sub.add_parser("sweep", help="each engine in turn at rising concurrency: throughput and latency")
    add_pair_options(sw)
    sw.add_argument("--levels", help="concurrency levels, e.g. 1,2,4,8 (default: 1..64 on a GPU, 1,2,4 on the CPU)")
    sw.add_argument(
        "--requests",
        type=int,
        default=0,
        help="requests per level, never fewer than the level (default 0: 2 x level, at least 8)",
    )
    sw.add_argument("--input-tokens", type=int, help="prompt tokens per request (default: 256 GPU, 32 CPU)")
    sw.add_argument("--output-tokens", type=int, help="output tokens per request (default: 256 GPU, 16 CPU)")
    sw.add_argument("--json", action="store_true", help="print one JSON object")
    sw.set_defaults(func=run)


def settings_from(args: argparse.Namespace, device_kind: str) -> SweepSettings:
    """The sweep's settings from the options, the device's defaults where none is given."""
    d = default_settings(device_kind)
    return SweepSettings(
        levels=parse_levels(args.levels) if args.levels is not None else d.levels,
        requests_per_level=args.requests,
        input_tokens=d.input_tokens if args.input_tokens is None else args.input_tokens,
        output_tokens=d.output_tokens if args.output_tokens is None else args.output_tokens,
    )


def _progress() -> Callable[[float, str], None]:
    last = [""]

    def show(fraction: float, text: str) -> None:
        if text != last[0]:
            print(f"[sweep] {fraction:4.0%} {text}", file=sys.stderr, flush=True)
            last[0] = text

    return show


def _print_table(result: SweepResult) -> None:
    rows = [[str(c) for c in row] for row in level_rows(result)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(COLUMNS)]
    print("  ".join(h.rjust(w) for h, w in zip(COLUMNS, widths, strict=True)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    if len(result.engines) == 2:
        print("\n" + crossover(*result.engines))


def run(args: argparse.Namespace) -> int:
    """Start both engines, sweep each in turn over the concurrency levels, print the figures."""
    try:
        arena = arena_for(args)
        settings = settings_from(args, arena.device.kind)
        if problems := arena.sweeps.problems(settings):
            raise SpecError("; ".join(problems))
    except (SpecError, StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        failed = not start_both(arena)
        result = arena.sweeps.run(settings, on_progress=_progress())
        for engine in result.engines:
            if engine.error:
                print(f"error: engine {engine.slot}: {engine.error}", file=sys.stderr)
                failed = True
            for note in engine.notes:
                print(f"note: engine {engine.slot}: {note}", file=sys.stderr)
        if args.json:
            print(json.dumps(as_json(result), indent=2))
        else:
            _print_table(result)
        return 1 if failed else 0
    finally:
        arena.shutdown()
