"""The A/B pair the engine commands share: --a/--b options, the arena they make, and starting both with progress."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from playground.arena.defaults import default_pair, neutral_spec, use_storage
from playground.measure.records import EngineStatus
from playground.measure.specs import SpecError, check_pair, parse_spec

if TYPE_CHECKING:
    from playground.arena.core import Arena


def add_pair_options(parser: argparse.ArgumentParser) -> None:
    """--a and --b, each an engine spec; left out, the default pair's engine."""
    parser.add_argument("--a", help="engine A: MODEL[,key=value...] (default: the default pair's A)")
    parser.add_argument("--b", help="engine B: MODEL[,key=value...] (default: the default pair's B)")


def progress(name: str) -> Callable[[EngineStatus], None]:
    """A progress callback that prints each new startup phase of engine `name` once, on stderr."""
    last = [""]

    def show(status: EngineStatus) -> None:
        line = f"[{name}] {status.phase} ({status.elapsed_s:.0f} s)"
        if line.split(" (")[0] != last[0]:
            print(line, file=sys.stderr, flush=True)
            last[0] = line.split(" (")[0]

    return show


def arena_for(args: argparse.Namespace) -> Arena:
    """The arena for --a/--b (defaults: the default pair); raises SpecError for a bad spec."""
    from playground.arena.core import Arena
    from playground.engines.monitor import device_info

    device = device_info()
    a, b = default_pair(device)
    # An explicit spec starts from the device's neutral settings, not from the default pair's.
    a = parse_spec(args.a, base=neutral_spec(device)) if args.a else a
    b = parse_spec(args.b, base=neutral_spec(device)) if args.b else b
    if problems := check_pair(a, b, device):  # before any engine starts: a pair that cannot run here
        raise SpecError("; ".join(problems))
    data = use_storage().data  # a persistent volume, when the Docker image has one mounted
    return Arena((a, b), data_dir=data, device=device, sample_interval_s=0.5)


def start_both(arena: Arena) -> bool:
    """Start both engines (side by side on the CPU) with progress on stderr; True when both are ready."""
    for name in ("A", "B"):
        slot = arena.slot(name)
        print(f"[{name}] starting {slot.spec.model} (quantization {slot.spec.quantization})", file=sys.stderr)
    ok = True
    for name, status in arena.start_all(on_progress=progress).items():
        if isinstance(status, str):
            print(f"error: engine {name}: {status}", file=sys.stderr)
            ok = False
        else:
            print(f"[{name}] ready in {status.startup_s or 0:.0f} s", file=sys.stderr)
    return ok
