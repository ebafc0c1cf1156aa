"""`tiny`: build the tiny model's bf16, AWQ and GPTQ checkpoints into a folder (no network)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `tiny` subcommand and its options."""
    tiny = sub.add_parser("tiny", help="build the tiny bf16/AWQ/GPTQ checkpoints (no network)")
    tiny.add_argument("--out", required=True, help="folder to write DIR/bf16, DIR/awq, DIR/gptq")
    tiny.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
