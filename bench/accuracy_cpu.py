"""CPU benchmark: lm-eval on 100 items of the shipped task against the tiny pair, both engines (target: 2 min).

Baseline from the same run: the same number of log-likelihood requests (items x choices, each the
question and one choice, echo with prompt logprobs) sent straight to each engine with the same
concurrency, no lm-eval. The ratio is lm-eval's wall time (its start-up, remote tokenization and
requests) over the bare requests'. Prints one JSON object.

    PYTHONPATH=. .venv/bin/python bench/accuracy_cpu.py [--limit 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from playground.arena.accuracy import PAIR
from playground.arena.core import Arena
from playground.arena.defaults import tiny_pair
from playground.engines.monitor import device_info
from playground.lmeval.runner import CONCURRENCY
from playground.lmeval.tasks import ASSETS, SHIPPED


def bare_requests(base_url: str, key: str, model: str, prompts: list[str]) -> float:
    """Seconds to send every prompt once (echo, prompt logprobs, one token), CONCURRENCY at a time."""
    body = {"model": model, "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0}
    with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {key}"}) as http:

        def one(prompt: str) -> None:
            http.post(f"{base_url}/v1/completions", json={**body, "prompt": prompt}).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(one, prompts))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    items = [json.loads(line) for line in (ASSETS / f"{SHIPPED}.jsonl").read_text().splitlines()][: args.limit]
    prompts = [f"{i['question']} {c}" for i in items for c in i["choices"]]
    device = device_info()
    data = Path(os.environ.get("PLAYGROUND_DATA", "/tmp/accuracy-bench"))
    arena = Arena(tiny_pair(device), data_dir=data, device=device, sample_interval_s=5)
    load = os.getloadavg()
    try:
        print(arena.start_all(), file=sys.stderr)
        started = time.perf_counter()
        final = list(arena.accuracy.run(SHIPPED, limit=args.limit, engines=PAIR))[-1]
        total = time.perf_counter() - started
        if final.report is None:
            raise SystemExit(f"evaluation failed: {final.error}")
        out: dict[str, object] = {"items": args.limit, "requests_per_engine": len(prompts), "target_s": 120}
        out |= {"lm_eval_total_s": round(total, 1), "load_average_before": load, "load_after": os.getloadavg()}
        engines = []
        for name, engine in zip("AB", final.report.engines, strict=True):
            e = arena.slot(name).engine
            assert e is not None
            bare = bare_requests(e.base_url, e.api_key, e.model_id, prompts)
            engines.append(
                {
                    "label": engine.label,
                    "accuracy": engine.accuracy,
                    "lm_eval_s": round(engine.seconds, 1),
                    "items_per_s": round(engine.items_per_s, 2),
                    "bare_requests_s": round(bare, 1),
                    "ratio_lm_eval_over_bare": round(engine.seconds / bare, 2),
                }
            )
        print(json.dumps({**out, "engines": engines}, indent=2))
    finally:
        arena.shutdown()


if __name__ == "__main__":
    main()
