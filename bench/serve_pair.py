"""Start two engines the way the app does and keep them running: the engines a before/after run of
bench/class_load.py shares, so both app versions meet the same warm engines.

    python bench/serve_pair.py --a SPEC --b SPEC --out /tmp/pair.json

Writes {"A": {"url", "key", "model"}, "B": {...}} to --out once both are ready, then runs until
SIGTERM or SIGINT, when it stops them (their memory freed)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import class_instance  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("/tmp/serve-pair"))
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    arena, refs = class_instance.start_engines(args, args.data)
    try:
        args.out.write_text(json.dumps({n: vars(r) for n, r in refs.items()}))
        print(f"[pair] ready: {args.out}", file=sys.stderr, flush=True)
        stop.wait()
    finally:
        arena.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
