"""The playground's sweep against vLLM's own benchmark client (`vllm bench serve`) on the same engine.

One engine is started the way the playground starts it (or an endpoint is attached to). At each
concurrency level, REPEATS times, the order alternating run by run so neither client always goes
first: the playground's sweep at that level only (the Throughput tab's core), and vllm bench with
the same work: the same number of requests, `--max-concurrency` = level, the same output tokens
with ignore_eos, greedy, and prompts made by the sweep's own builder (exactly as many tokens, each
with first tokens of its own, so none is served from vLLM's prefix cache). vllm bench runs in one
long-lived process (bench/vllm_bench_client.py). Around each run /metrics is read and sampled
(bench/engine_metrics.py): what vLLM itself saw of each client's work.

Per level it prints the median over the repeats of both output throughputs and their ratio, both
TTFT p50 / p95, both ITL p50, how far each client's runs spread, how long each took to send its
opening burst, and whether the medians agree by issue 13's rule (throughput within 3 %; TTFT p50
within 10 %, or 5 ms when both are under 50 ms). Everything lands in OUT.

Usage:
  PYTHONPATH=. python bench/sweep_vs_vllm_bench.py --spec SPEC [--levels 1,8,32,64,128,256]
      [--repeats 5] [--input-tokens 128] [--output-tokens 128] [--out DIR] [--tokenizer PATH]
  PYTHONPATH=. python bench/sweep_vs_vllm_bench.py --endpoint URL --model ID --tokenizer PATH ...
SPEC as the CLI takes it, e.g. "/tmp/l7b/fp16,quantization=auto,enforce_eager=false,util=0.4,
max_model_len=4096,extra_args=--load-format dummy".
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_metrics import Recorder  # noqa: E402
from vllm_bench_client import BenchClient, bench_args, write_prompts  # noqa: E402

from playground.measure.sweep import SweepSettings, parse_levels  # noqa: E402

TTFT_SHARE, TTFT_FLOOR_MS, TTFT_SMALL_MS, THROUGHPUT_SHARE = 0.10, 5.0, 50.0, 0.03
FIGURES = (
    "output_tok_s",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "itl_p50_ms",
    "itl_p95_ms",
    "duration_s",
    "first_wave_spread_ms",
)


def run_sweep_level(target: Any, level: int, settings: SweepSettings, poll: bool = True) -> dict[str, Any]:
    """The playground's own sweep (the Throughput tab's core) at one level; `poll=False` without its
    /metrics and memory poller (which the API server answers while it streams). The streams' raw
    outcomes are looked at on their way back (not changed) for the opening burst's spread."""
    from dataclasses import replace

    from playground.arena import loadgen

    seen: list[Any] = []
    real = loadgen.run_streams

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(out := real(*args, **kwargs))
        return out

    loadgen.run_streams = watched
    try:
        one = SweepSettings((level,), 0, settings.input_tokens, settings.output_tokens)
        result = loadgen.run_sweep([replace(target, poll=poll)], one)
    finally:
        loadgen.run_streams = real
    engine = result.engines[0]
    if engine.error or not engine.levels:
        return {"error": engine.error or "no level measured", "notes": list(engine.notes)}
    lv = engine.levels[0]
    starts = sorted(o.sent_at for o in seen[-1])[:level] if seen else []
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
        "first_wave_spread_ms": (starts[-1] - starts[0]) * 1000 if len(starts) > 1 else None,
        "notes": list(engine.notes),
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs that have it, and how far the runs spread (max-min)/median."""
    good = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"runs": len(good), "errors": [r["error"] for r in runs if "error" in r]}
    for key in FIGURES:
        values = [r[key] for r in good if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
        if key in ("output_tok_s", "ttft_p50_ms") and len(values) > 1 and out[key]:
            out[f"{key}_spread"] = (max(values) - min(values)) / out[key]
    return out


def agreement(sweep: dict[str, Any], bench: dict[str, Any]) -> dict[str, Any]:
    """Issue 13's rule: throughput within 3 %; TTFT p50 within 10 %, or 5 ms when both are under 50 ms."""
    a, b = sweep.get("output_tok_s"), bench.get("output_tok_s")
    ta, tb = sweep.get("ttft_p50_ms"), bench.get("ttft_p50_ms")
    if not (a and b and ta is not None and tb is not None):
        return {"ratio": None, "throughput_ok": False, "ttft_ok": False}
    small = ta < TTFT_SMALL_MS and tb < TTFT_SMALL_MS
    ttft_ok = abs(ta - tb) <= TTFT_SHARE * tb or (small and abs(ta - tb) <= TTFT_FLOOR_MS)
    return {"ratio": a / b, "throughput_ok": abs(a / b - 1) <= THROUGHPUT_SHARE, "ttft_ok": ttft_ok}


def table(levels: list[dict[str, Any]]) -> str:
    """The markdown table of docs/performance.md section 6: medians over the repeats."""
    head = (
        "| concurrency | sweep tok/s | vllm bench tok/s | ratio | sweep TTFT p50 / p95 ms | bench TTFT p50 / p95 ms "
        "| sweep ITL p50 ms | bench ITL p50 ms | run-to-run spread, tok/s and TTFT p50: sweep; bench "
        "| opening burst sent in, ms: sweep; bench | agree |\n" + "|---" * 11 + "|"
    )

    def f(v: Any, d: int = 1) -> str:
        return "–" if v is None else f"{v:,.{d}f}"

    def pct(v: Any) -> str:
        return "–" if v is None else f"{100 * v:.0f} %"

    rows = []
    for lv in levels:
        s, b, a = lv["sweep"], lv["bench"], lv["agreement"]
        off = [name for name, ok in (("tok/s", a["throughput_ok"]), ("TTFT", a["ttft_ok"])) if not ok]
        spread = "; ".join(f"{pct(x.get('output_tok_s_spread'))}, {pct(x.get('ttft_p50_ms_spread'))}" for x in (s, b))
        rows.append(
            f"| {lv['concurrency']} | {f(s.get('output_tok_s'), 0)} | {f(b.get('output_tok_s'), 0)} | "
            f"{f(a['ratio'], 3)} | {f(s.get('ttft_p50_ms'))} / {f(s.get('ttft_p95_ms'))} | "
            f"{f(b.get('ttft_p50_ms'))} / {f(b.get('ttft_p95_ms'))} | {f(s.get('itl_p50_ms'), 2)} | "
            f"{f(b.get('itl_p50_ms'), 2)} | {spread} | {f(s.get('first_wave_spread_ms'))}; "
            f"{f(b.get('first_wave_spread_ms'))} | {'yes' if not off else ' and '.join(off) + ' off'} |"
        )
    return head + "\n" + "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", help="an engine to start, as the CLI's --a takes it")
    parser.add_argument("--endpoint", help="or a running server's base URL (then --model and --tokenizer)")
    parser.add_argument("--model", help="served model id (with --endpoint)")
    parser.add_argument("--api-key", default="", help="with --endpoint, when the server wants one")
    parser.add_argument("--tokenizer", help="tokenizer vllm bench counts tokens with (default: the model's path)")
    parser.add_argument("--levels", default="1,8,32,64,128,256")
    parser.add_argument("--repeats", type=int, default=5, help="runs per client per level (medians are compared)")
    parser.add_argument("--input-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--out", default="data/vs-vllm-bench")
    parser.add_argument("--bench-timeout", type=float, default=240.0, help="seconds per vllm bench run")
    args = parser.parse_args()
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
        tokenizer = engine.spec.model
    else:
        target = loadgen.SweepTarget("A", "A: endpoint", args.endpoint.rstrip("/"), args.api_key, args.model)
        tokenizer = args.model
    tokenizer = args.tokenizer or tokenizer
    recorder = Recorder(target.base_url, out)
    client = BenchClient(out / "vllm-bench.log", target.api_key)
    print(f"vLLM's benchmark module imported in {client.import_s:.1f} s", file=sys.stderr, flush=True)
    report: dict[str, Any] = {
        "spec": args.spec,
        "endpoint": target.base_url,
        "model": target.model,
        "tokenizer": tokenizer,
        "device": device.name,
        "settings": {
            "levels": list(settings.levels),
            "repeats": args.repeats,
            "input_tokens": settings.input_tokens,
            "output_tokens": settings.output_tokens,
        },
        "bench_import_s": client.import_s,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "levels": [],
    }
    run_tag = secrets.token_hex(2)
    try:
        for i, level in enumerate(settings.levels):
            runs: dict[str, list[dict[str, Any]]] = {"sweep": [], "bench": []}
            for rep in range(args.repeats):
                order = ("sweep", "bench") if (i + rep) % 2 == 0 else ("bench", "sweep")
                for who in order:
                    name = f"c{level}-r{rep}-{who}"
                    print(f"concurrency {level}, run {rep + 1}/{args.repeats}: {who}", file=sys.stderr, flush=True)
                    if who == "sweep":
                        fig, seen = recorder.around(name, lambda lv=level: run_sweep_level(target, lv, settings))
                    else:
                        same = loadgen.fixed_prompts(
                            target, settings.input_tokens, settings.requests_at(level), f"b{run_tag}{i}{rep}"
                        )
                        prompts = write_prompts(out / f"{name}.jsonl", same)
                        cmd = bench_args(
                            target.base_url,
                            target.model,
                            tokenizer,
                            prompts,
                            level,
                            settings.requests_at(level),
                            settings.output_tokens,
                        )
                        fig, seen = recorder.around(name, lambda c=cmd: client.run(c, args.bench_timeout))
                    runs[who].append(fig | {"order": order.index(who), "vllm": seen})
            entry: dict[str, Any] = {"concurrency": level, "runs": runs}
            entry["sweep"], entry["bench"] = medians(runs["sweep"]), medians(runs["bench"])
            entry["agreement"] = agreement(entry["sweep"], entry["bench"])
            report["levels"].append(entry)
            (out / "comparison.json").write_text(json.dumps(report, indent=2))
            print(table([entry]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        client.close()
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
