"""Median figures of the default pair over repeated fair compares (one request is not a measurement).

Usage: python bench/compare_medians.py [N] [MAX_TOKENS]   (prints one JSON object)
"""

from __future__ import annotations

import json
import sys
import time

from playground.arena.core import Arena
from playground.arena.defaults import default_pair, use_storage
from playground.engines.monitor import device_info
from playground.measure.generation import GenerationParams
from playground.measure.metrics import median

PROMPTS = ["The default value is", "This module provides", "Return the", "The function returns"]


def main(n: int = 8, max_tokens: int = 64) -> dict[str, object]:
    """Start the default pair, run n fair compares, report medians per engine."""
    device = device_info()
    arena = Arena(default_pair(device), data_dir=use_storage().data, device=device)
    out: dict[str, object] = {"device": device.name, "runs": n, "max_tokens": max_tokens, "engines": {}}
    try:
        for name in ("A", "B"):
            started = time.monotonic()
            arena.start(name)
            out["engines"][name] = {
                "label": arena.slot(name).label,  # type: ignore[index]
                "startup_s": round(time.monotonic() - started, 1),
            }
        params = GenerationParams(max_tokens=max_tokens, temperature=0.0, chat=False)
        answers = [arena.compare_once(PROMPTS[i % len(PROMPTS)], params, "fair") for i in range(n)]
        arena.watch.sample_once()
        for i, name in enumerate(("A", "B")):
            timings = [run[i].timing for run in answers if run[i].timing and not run[i].error]
            row = out["engines"][name]  # type: ignore[index]
            for key in ("ttft_ms", "decode_tok_s", "itl_p50_ms", "itl_p95_ms", "e2e_ms"):
                values = [getattr(t, key) for t in timings if getattr(t, key) is not None]
                row[key] = None if not values else round(median(values) or 0, 2)
            row["bursty_runs"] = sum(t.bursty for t in timings)
            row["memory_mb"] = arena.watch.memory_mb(name)
            row["kv_cache_tokens"] = arena.slot(name).metrics.kv_cache_tokens
            row["notes"] = list(arena.status(name).notes)
        out["memory_source"] = arena.samples[-1].source
    finally:
        arena.shutdown()
    return out


if __name__ == "__main__":
    print(json.dumps(main(*(int(a) for a in sys.argv[1:3])), indent=2))
