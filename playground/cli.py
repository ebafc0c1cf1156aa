"""Headless command line on the same core: `python -m playground compare|tiny ...`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from playground.defaults import data_dir, default_pair
from playground.engines import EngineError
from playground.generation import MODES, GenerationParams
from playground.records import EngineStatus
from playground.specs import SpecError, parse_spec


def _progress(name: str):  # type: ignore[no-untyped-def]
    last = [""]

    def show(status: EngineStatus) -> None:
        line = f"[{name}] {status.phase} ({status.elapsed_s:.0f} s)"
        if line.split(" (")[0] != last[0]:
            print(line, file=sys.stderr, flush=True)
            last[0] = line.split(" (")[0]

    return show


def cmd_compare(args: argparse.Namespace) -> int:
    """Start both engines, send one prompt, print the figures as JSON, stop the engines."""
    from playground.arena import Arena  # noqa: PLC0415 - keeps `tiny` free of the core's imports
    from playground.monitor import device_info

    device = device_info()
    a, b = default_pair(device)
    try:
        a = parse_spec(args.a, base=a) if args.a else a
        b = parse_spec(args.b, base=b) if args.b else b
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    arena = Arena((a, b), data_dir=data_dir(), device=device, sample_interval_s=0.5)
    params = GenerationParams(
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        chat=not args.completion,
    )
    failed = False
    try:
        for name in ("A", "B"):
            try:
                slot = arena.slot(name)
                print(f"[{name}] starting {slot.spec.model} ({slot.spec.quantization})", file=sys.stderr)
                status = arena.start(name, on_progress=_progress(name))
                print(f"[{name}] ready in {status.startup_s or 0:.0f} s", file=sys.stderr)
            except (SpecError, EngineError) as exc:
                print(f"error: engine {name}: {exc}", file=sys.stderr)
                failed = True
        try:
            answers = arena.compare_once(args.prompt, params, args.mode)
        except SpecError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        arena.sample_once()
        result = {"mode": args.mode, "engines": [a.as_dict() for a in answers]}
        for ans in answers:
            if ans.error:
                print(f"error: engine {ans.slot}: {ans.error}", file=sys.stderr)
                failed = True
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for ans in answers:
                print(f"--- {ans.label}\n{ans.text}\n")
        return 1 if failed else 0
    finally:
        arena.shutdown()


def cmd_tiny(args: argparse.Namespace) -> int:
    """Build the tiny model's bf16, AWQ and GPTQ checkpoints into a folder."""
    from playground.tiny import build_tiny

    try:
        built = build_tiny(Path(args.out))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in sorted(built.items()):
        print(f"{name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments."""
    parser = argparse.ArgumentParser(prog="python -m playground", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="send one prompt to two engines and report the figures")
    cmp.add_argument("--a", help="engine A: MODEL[,key=value...] (default: the default pair's A)")
    cmp.add_argument("--b", help="engine B: MODEL[,key=value...]")
    cmp.add_argument("--prompt", required=True)
    cmp.add_argument("--mode", choices=MODES, default="fair")
    cmp.add_argument("--max-tokens", type=int, default=64)
    cmp.add_argument("--temperature", type=float, default=0.0)
    cmp.add_argument("--top-p", type=float, default=1.0)
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--completion", action="store_true", help="plain completion instead of chat")
    cmp.add_argument("--json", action="store_true", help="print one JSON object")
    cmp.set_defaults(func=cmd_compare)
    tiny = sub.add_parser("tiny", help="build the tiny bf16/AWQ/GPTQ checkpoints (no network)")
    tiny.add_argument("--out", required=True, help="folder to write DIR/bf16, DIR/awq, DIR/gptq")
    tiny.set_defaults(func=cmd_tiny)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs atexit: engines are stopped
    return int(args.func(args))
