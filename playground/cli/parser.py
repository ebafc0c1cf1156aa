"""The argument parser, one subcommand per module of this folder, and the entry point."""

from __future__ import annotations

import argparse
import signal
import sys

from playground.cli import accuracy, compare, ladder, plan, quality, quantize, sweep, tiny

# Each module adds its subparser and sets `func` to its command; the order is the order of `--help`.
COMMANDS = (compare, quality, sweep, plan, ladder, tiny, quantize, accuracy)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments."""
    parser = argparse.ArgumentParser(prog="python -m playground")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    parser.description = f"Headless command line on the same core: `python -m playground {'|'.join(sub.choices)} ...`."
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs atexit: engines are stopped
    return int(args.func(args))
