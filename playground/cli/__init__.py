"""Layer 4, the command line (`python -m playground ...`): one module per command, each parsing its options
and calling the core; `pair` starts the A/B pair the engine commands share, `parser` gathers the commands.

Imports the arena (3) and everything below it; nothing here computes a metric.
"""

from __future__ import annotations

from playground.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
