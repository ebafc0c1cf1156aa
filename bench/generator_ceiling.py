"""How much load can the sweep's load generator take in, and how true are its timestamps? A benchmark.

Against tests/token_server.py (a real local HTTP server streaming vLLM-style SSE, one event per
token per engine step), the same level is run by
  old = the threaded generator the sweep used before issue 13: one thread per stream, each
        streaming with playground.engines.client.stream_generation (sync httpx, JSON parsed per chunk);
  new = the sweep's level driver now (playground.arena.loadgen._run_level over
        playground.engines.stream_async: one asyncio loop, reads stamped on arrival, parsed after),
both with the level's /metrics poller running as in a sweep (the server's /metrics is ~50 KB, like vLLM's),
alternating old, new, old, new ... and prints per scenario the medians and the ratios new / old:
  tokens/s taken in (the sweep's own figure: tokens over first send to last answer), what the
  server managed to send, CPU time of this process per chunk (µs), and how late each token's
  timestamp is against the server's own send time (lag p50 / p99; same CLOCK_MONOTONIC).
Every run is also checked: every request answered, exact token counts, tokens in order.

Scenarios: "paced" = an engine step every STEP ms for every stream (25 ms x 256 streams offers
10,240 tok/s, an H200's rate at 256 in docs/performance.md); "flat out" = the server writes as fast
as the client takes it (the client's ceiling, or the server's where CPU per chunk says so).

Usage: PYTHONPATH=. python bench/generator_ceiling.py [--repeats 3] [--concurrency 256]
       [--tokens 128] [--step-ms 25] [--scenarios paced,flat]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.arena import loadgen  # noqa: E402
from playground.engines.client import StreamOutcome, stream_generation  # noqa: E402
from playground.measure.generation import GenerationParams  # noqa: E402
from playground.measure.metrics import percentile  # noqa: E402
from playground.measure.sweep import aggregate_level  # noqa: E402
from tests.token_server import running  # noqa: E402

Generator = Callable[[str, Sequence[str], GenerationParams, int], list[StreamOutcome]]


def threaded(base_url: str, prompts: Sequence[str], params: GenerationParams, concurrency: int) -> list[StreamOutcome]:
    """The pre-issue-13 sweep level: `concurrency` threads pull prompts and stream each with the sync
    client, while the level's /metrics poller runs (as it did)."""
    pending = list(reversed(prompts))
    outcomes: list[StreamOutcome] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                prompt = pending.pop()
            outcome = stream_generation(base_url, "", "m", prompt, params)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    with loadgen._PeakPoller(_target(base_url)):
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    return outcomes


def asynchronous(
    base_url: str, prompts: Sequence[str], params: GenerationParams, concurrency: int
) -> list[StreamOutcome]:
    """The sweep's level driver as it is now (playground.arena.loadgen: one asyncio loop, poller on)."""
    progress = loadgen._Progress(None, len(prompts))
    _, outcomes, _ = loadgen._run_level(_target(base_url), prompts, concurrency, params, progress, threading.Event())
    return outcomes


def _target(base_url: str) -> loadgen.SweepTarget:
    return loadgen.SweepTarget("A", "A: token server", base_url, "", "m")


def check(outcomes: Sequence[StreamOutcome], requests: int, tokens: int) -> tuple[list[float], list[float]]:
    """Lags (s) and server send times of every token; AssertionError when a request, a token or the order is off."""
    assert len(outcomes) == requests, f"{len(outcomes)} answers for {requests} requests"
    lags, sends = [], []
    for o in outcomes:
        assert not o.error, o.error
        assert o.output_tokens == tokens == sum(c.tokens for c in o.chunks), (o.output_tokens, len(o.chunks))
        stamps = [tok.split("@") for c in o.chunks for tok in c.text.split()]
        assert [int(i) for i, _ in stamps] == list(range(tokens)), "tokens lost or out of order"
        per_token = [c.t for c in o.chunks for _ in range(c.tokens)]
        lags += [arrived - float(sent) for arrived, (_, sent) in zip(per_token, stamps, strict=True)]
        sends += [float(sent) for _, sent in stamps]
    return lags, sends


def run_once(gen: Generator, base_url: str, concurrency: int, tokens: int, tag: str) -> dict[str, float]:
    params = GenerationParams(max_tokens=tokens, temperature=0.0, chat=False, ignore_eos=True)
    prompts = [f"{tag}-{i}: the the the" for i in range(2 * concurrency)]
    cpu, wall = time.process_time(), time.perf_counter()
    outcomes = gen(base_url, prompts, params, concurrency)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    lags, sends = check(outcomes, len(prompts), tokens)
    chunks = sum(len(o.chunks) for o in outcomes)
    level = aggregate_level(concurrency, outcomes)
    return {
        "tok_s": level.output_tok_s or 0.0,  # the sweep's own figure: tokens / (last answer - first send)
        # What the server managed to send (first to last token written): when it is no higher than
        # tok_s, the server, not the client, set the pace.
        "server_sent_tok_s": len(sends) / (max(sends) - min(sends)),
        "cpu_us_per_chunk": cpu / chunks * 1e6,  # streaming and parsing, all threads of this process
        "level_wall_s": wall,  # the whole call, parsing after the streams included
        "lag_p50_ms": (percentile(lags, 50) or 0) * 1000,
        "lag_p99_ms": (percentile(lags, 99) or 0) * 1000,
    }


def scenario(step_ms: float, concurrency: int, tokens: int, repeats: int) -> dict[str, object]:
    """old, new alternately `repeats` times against one server; medians and new/old ratios."""
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    with running(step_ms) as url:
        run_once(asynchronous, url, min(concurrency, 16), 8, "warm")  # connections, imports, JIT-free warm-up
        for r in range(repeats):
            for name, gen in (("old", threaded), ("new", asynchronous)):
                runs[name].append(run_once(gen, url, concurrency, tokens, f"{name}{r}"))
                print(
                    f"  {name} run {r + 1}: {json.dumps({k: round(v, 2) for k, v in runs[name][-1].items()})}",
                    file=sys.stderr,
                    flush=True,
                )
    med = {name: {k: statistics.median(run[k] for run in rs) for k in rs[0]} for name, rs in runs.items()}
    return {
        "step_ms": step_ms,
        "offered_tok_s": concurrency * 1000 / step_ms if step_ms else None,
        "concurrency": concurrency,
        "tokens": tokens,
        "repeats": repeats,
        "median": med,
        "ratio_new_over_old_tok_s": med["new"]["tok_s"] / med["old"]["tok_s"],
        "ratio_old_over_new_cpu_per_chunk": med["old"]["cpu_us_per_chunk"] / med["new"]["cpu_us_per_chunk"],
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--step-ms", type=float, default=25.0)
    parser.add_argument("--scenarios", default="paced,flat")
    args = parser.parse_args()
    out = {}
    for name in args.scenarios.split(","):
        step = args.step_ms if name == "paced" else 0.0
        print(f"{name}: step {step} ms, concurrency {args.concurrency}, {args.tokens} tokens", file=sys.stderr)
        out[name] = scenario(step, args.concurrency, args.tokens, args.repeats)
    print(json.dumps(out, indent=2))
    print(
        "\nscenario | generator | tok/s taken in | server sent tok/s | CPU µs/chunk | lag p50 ms | lag p99 ms",
        file=sys.stderr,
    )
    for name, s in out.items():
        for gen in ("old", "new"):
            m = s["median"][gen]  # type: ignore[index]
            print(
                f"{name} | {gen} | {m['tok_s']:,.0f} | {m['server_sent_tok_s']:,.0f} | {m['cpu_us_per_chunk']:.1f} | "
                f"{m['lag_p50_ms']:.2f} | "
                f"{m['lag_p99_ms']:.2f}",
                file=sys.stderr,
            )
        print(
            f"{name}: new/old tok/s x{s['ratio_new_over_old_tok_s']:.2f}, "
            f"old/new CPU per chunk x{s['ratio_old_over_new_cpu_per_chunk']:.2f}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
