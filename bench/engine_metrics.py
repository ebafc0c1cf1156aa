"""vLLM's own view of a benchmark run, from its /metrics: counters read before and after a run
(server-side TTFT and ITL, tokens per engine step, preemptions, prefix-cache hits) and running /
waiting requests and KV use sampled every 0.5 s by a separate process while it runs.

Used by bench/sweep_vs_vllm_bench.py; run as a script it is that sampling process:
  python bench/engine_metrics.py URL FILE
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.measure.prometheus import parse_samples  # noqa: E402


def record_metrics(url: str, path: str) -> None:
    """Child process: one line per /metrics read every 0.5 s (time, running, waiting, KV use) until killed."""
    with httpx.Client(timeout=5) as http, open(path, "a") as out:
        while True:
            t = time.time()
            try:
                figures = _gauges(http.get(url + "/metrics").text)
                out.write(json.dumps({"t": t, **figures}) + "\n")
                out.flush()
            except httpx.HTTPError as exc:
                out.write(json.dumps({"t": t, "error": str(exc)}) + "\n")
            time.sleep(max(0.5 - (time.time() - t), 0))


def _gauges(text: str) -> dict[str, float]:
    names = {
        "vllm:num_requests_running": "running",
        "vllm:num_requests_waiting": "waiting",
        "vllm:kv_cache_usage_perc": "kv",
    }
    out: dict[str, float] = {}
    for s in parse_samples(text):
        if s.name in names:
            out[names[s.name]] = out.get(names[s.name], 0.0) + s.value
    return out


def counters(text: str) -> dict[str, float]:
    """The /metrics counters that say what the engine itself did (summed over label sets)."""
    wanted = {
        "vllm:generation_tokens_total",
        "vllm:prompt_tokens_total",
        "vllm:num_preemptions_total",
        "vllm:time_to_first_token_seconds_sum",
        "vllm:time_to_first_token_seconds_count",
        "vllm:inter_token_latency_seconds_sum",
        "vllm:inter_token_latency_seconds_count",
        "vllm:iteration_tokens_total_sum",
        "vllm:iteration_tokens_total_count",
        "vllm:request_queue_time_seconds_sum",
        "vllm:request_queue_time_seconds_count",
        "vllm:prefix_cache_hits_total",
        "vllm:prefix_cache_queries_total",
    }
    out: dict[str, float] = {}
    for s in parse_samples(text):
        if s.name in wanted:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def engine_view(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    """What vLLM itself measured between two /metrics reads: its mean TTFT and ITL, tokens per step."""
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}

    def mean(name: str, scale: float = 1.0) -> float | None:
        n = d.get(f"{name}_count", 0.0)
        return d.get(f"{name}_sum", 0.0) / n * scale if n else None

    return {
        "generation_tokens": d.get("vllm:generation_tokens_total"),
        "preemptions": d.get("vllm:num_preemptions_total"),
        "prefix_cache_hits": d.get("vllm:prefix_cache_hits_total"),
        "server_ttft_mean_ms": mean("vllm:time_to_first_token_seconds", 1000),
        "server_itl_mean_ms": mean("vllm:inter_token_latency_seconds", 1000),
        "queue_time_mean_ms": mean("vllm:request_queue_time_seconds", 1000),
        "tokens_per_step_mean": mean("vllm:iteration_tokens_total"),
        "engine_steps": d.get("vllm:iteration_tokens_total_count"),
    }


def peaks(path: Path, start: float, end: float) -> dict[str, float | None]:
    """Highest running / waiting / KV use sampled between two wall-clock times."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    rows = [r for r in rows if start <= r["t"] <= end and "error" not in r]
    return {k: max((r.get(k, 0.0) for r in rows), default=None) for k in ("running", "waiting", "kv")} | {
        "samples": len(rows)
    }


class Recorder:
    """/metrics read around each run and sampled in a separate process during it."""

    def __init__(self, url: str, out: Path):
        self.url, self.out = url, out
        self.samples = out / "metrics-samples.jsonl"
        cmd = [sys.executable, __file__, url, str(self.samples)]
        self.proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # noqa: S603

    def snapshot(self, name: str) -> dict[str, float]:
        text = httpx.get(self.url + "/metrics", timeout=10).text
        (self.out / "metrics").mkdir(exist_ok=True)
        (self.out / "metrics" / f"{name}.txt").write_text(text)
        return counters(text)

    def around(self, name: str, run: Any) -> tuple[Any, dict[str, Any]]:
        before, start = self.snapshot(f"{name}-before"), time.time()
        result = run()
        end = time.time()
        after = self.snapshot(f"{name}-after")
        return result, {"engine": engine_view(before, after), "peaks": peaks(self.samples, start, end)}

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


if __name__ == "__main__":
    record_metrics(sys.argv[1], sys.argv[2])
