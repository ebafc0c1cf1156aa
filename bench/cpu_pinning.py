"""Do a CPU engine's processes belong on its own cores? A benchmark, not a test.

The playground gives each CPU engine half of the cores (VLLM_CPU_OMP_THREADS_BIND), and vLLM binds the
worker's OpenMP threads there. Its engine core and worker also busy-wait for each other's messages, and
by default (PLAYGROUND_CPU_PIN unset) the launcher keeps all of the engine's processes on its cores.
This starts the tiny pair twice, confined and free (PLAYGROUND_CPU_PIN=0), in the order given, and sends
the same load to both engines at once: REQUESTS requests of MAX_TOKENS tokens each (ignore_eos), all at
once, per engine. It prints each round's wall time per engine, the CPU time of each engine's processes,
and the ratio free / confined as JSON.

Usage: PYTHONPATH=. python bench/cpu_pinning.py [--rounds confined,free,confined,free] [--requests 8]
       [--max-tokens 128] [--busy 0] [--model data/tiny/bf16]
--busy N runs N extra processes that spin on any core meanwhile, as other work does (the test process,
another engine's start).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.engines.client import post_json  # noqa: E402
from playground.engines.cpu import cpu_engine_env  # noqa: E402
from playground.engines.monitor import device_info  # noqa: E402
from playground.engines.server import CPU_PIN_ENV, Engine  # noqa: E402
from playground.measure.specs import EngineSpec  # noqa: E402


def _spin(stop: Any) -> None:
    while not stop.is_set():
        pass


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _load(engine: Engine, requests: int, max_tokens: int, out: dict[str, float]) -> None:
    """All requests at once against one engine; records when the last one finished."""
    body = {
        "model": engine.model_id,
        "prompt": "The default value is",
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
    }
    started = time.perf_counter()
    threads = [
        threading.Thread(target=post_json, args=(engine.base_url, engine.api_key, "/v1/completions", body))
        for _ in range(requests)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out[engine.name] = time.perf_counter() - started


def one_round(mode: str, model: str, requests: int, max_tokens: int, busy: int, log_dir: Path) -> dict[str, object]:
    device = device_info()
    spec = EngineSpec(model=model, gpu_memory_utilization=0.25, max_model_len=512, enforce_eager=True)
    engines = []
    for i, name in enumerate(("A", "B")):
        env = cpu_engine_env(i, device)
        env[CPU_PIN_ENV] = "1" if mode == "confined" else "0"
        engines.append(Engine(spec, name=name, log_dir=log_dir, env=env))
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
    try:
        for e in engines:
            e.launch()
        for e in engines:
            e.wait_ready(timeout_s=600)
        post_json(
            engines[0].base_url,
            engines[0].api_key,
            "/v1/completions",
            {"model": engines[0].model_id, "prompt": "warm", "max_tokens": 4},
        )
        pids = {e.name: e.pids()[1:] for e in engines}
        before = {n: _cpu_seconds(p) for n, p in pids.items()}
        for s in spinners:
            s.start()
        walls: dict[str, float] = {}
        threads = [threading.Thread(target=_load, args=(e, requests, max_tokens, walls)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu = {n: round(_cpu_seconds(p) - before[n], 2) for n, p in pids.items()}
        return {"mode": mode, "wall_s": {n: round(w, 2) for n, w in walls.items()}, "engine_cpu_s": cpu}
    finally:
        stop.set()
        for s in spinners:
            if s.is_alive():
                s.join(5)
        for e in engines:
            e.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", default="confined,free,confined,free")
    p.add_argument("--requests", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--busy", type=int, default=0)
    p.add_argument("--model", default=str(ROOT / "data" / "tiny" / "bf16"))
    args = p.parse_args()
    if not Path(args.model, "config.json").exists():
        sys.exit(f"no model at {args.model}: build the tiny checkpoints first (make tiny)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("this compares engines on separate cores: it needs 2 cores or more")
    rounds = []
    with tempfile.TemporaryDirectory() as logs:
        for mode in args.rounds.split(","):
            r = one_round(mode, args.model, args.requests, args.max_tokens, args.busy, Path(logs))
            print(json.dumps(r), file=sys.stderr, flush=True)
            rounds.append(r)

    def worst(mode: str) -> list[float]:
        return [max(r["wall_s"].values()) for r in rounds if r["mode"] == mode]  # type: ignore[union-attr]

    confined, free = worst("confined"), worst("free")
    summary: dict[str, object] = {
        "rounds": rounds,
        "requests": args.requests,
        "max_tokens": args.max_tokens,
        "busy": args.busy,
        "cpus": os.cpu_count(),
    }
    if confined and free:
        summary["free_over_confined"] = round(min(free) / min(confined), 2)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
