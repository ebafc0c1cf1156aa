"""Which HTTP client should carry the sweep's streams? The measurement behind the choice in
playground/engines/stream_async.py. A benchmark, not a test.

Against tests/token_server.py paced like an engine (a token for every stream every STEP ms), each
candidate streams the same level, taking only a timestamp and the bytes per read (the least any
of them can do), in turn for REPEATS rounds:
  threads = a thread per stream, sync httpx (the sweep before issue 13, minus its per-chunk JSON);
  httpx   = one asyncio loop, httpx.AsyncClient, aiter_raw;
  aiohttp = one asyncio loop, aiohttp (what `vllm bench serve` uses), iter_any;
  raw     = one asyncio loop, HTTP/1.1 on asyncio's transports (playground.engines.stream_async).
Prints medians of tokens/s taken in and of each token's lag behind the server's send time.

Usage: PYTHONPATH=. python bench/stream_clients.py [--concurrency 256] [--tokens 128] [--step-ms 25] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.engines.http1 import RawAnswer  # noqa: E402
from playground.engines.stream_async import sse_events, stream_all  # noqa: E402
from playground.measure.generation import GenerationParams  # noqa: E402
from playground.measure.metrics import percentile  # noqa: E402
from tests.token_server import running  # noqa: E402

Reads = list[tuple[float, bytes]]


def body(i: int, tokens: int) -> dict[str, object]:
    return {
        "model": "m",
        "prompt": f"{i}: the the",
        "max_tokens": tokens,
        "stream": True,
        "ignore_eos": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
    }


def lags(reads: Reads) -> list[float]:
    """Arrival minus send time of every token (the token server writes `" <i>@<send time>"`)."""
    import json

    out = []
    for t, data in sse_events(reads):
        if data == b"[DONE]":
            continue
        for choice in json.loads(data).get("choices") or []:
            out += [t - float(tok.split("@")[1]) for tok in choice["text"].split()]
    return out


async def _pull(n: int, concurrency: int, one: Callable[[int], object]) -> list[Reads]:
    pending = list(range(n))
    results: list[Reads] = []

    async def worker() -> None:
        while pending:
            results.append(await one(pending.pop()))  # type: ignore[misc]

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def with_httpx(url: str, n: int, concurrency: int, tokens: int) -> list[Reads]:
    async def main() -> list[Reads]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:

            async def one(i: int) -> Reads:
                reads: Reads = []
                async with client.stream("POST", url + "/v1/completions", json=body(i, tokens)) as r:
                    async for data in r.aiter_raw():
                        reads.append((time.perf_counter(), data))
                return reads

            return await _pull(n, concurrency, one)

    return asyncio.run(main())


def with_aiohttp(url: str, n: int, concurrency: int, tokens: int) -> list[Reads]:
    import aiohttp

    async def main() -> list[Reads]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

            async def one(i: int) -> Reads:
                reads: Reads = []
                async with session.post(url + "/v1/completions", json=body(i, tokens)) as r:
                    async for data in r.content.iter_any():
                        reads.append((time.perf_counter(), data))
                return reads

            return await _pull(n, concurrency, one)

    return asyncio.run(main())


def with_raw(url: str, n: int, concurrency: int, tokens: int) -> list[Reads]:
    params = GenerationParams(max_tokens=tokens, temperature=0.0, chat=False, ignore_eos=True)
    answers: list[RawAnswer] = asyncio.run(
        stream_all(url, "", "m", [f"{i}: the the" for i in range(n)], params, concurrency)
    )
    return [a.reads for a in answers]


def with_threads(url: str, n: int, concurrency: int, tokens: int) -> list[Reads]:
    client = httpx.Client(timeout=120, limits=httpx.Limits(max_connections=512, max_keepalive_connections=128))
    pending = list(range(n))
    results: list[Reads] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                i = pending.pop()
            reads: Reads = []
            try:
                with client.stream("POST", url + "/v1/completions", json=body(i, tokens)) as r:
                    for data in r.iter_raw():
                        reads.append((time.perf_counter(), data))
            except httpx.HTTPError as exc:  # counted as missing tokens below
                print(f"  threads: {type(exc).__name__}: {exc}", file=sys.stderr)
            with lock:
                results.append(reads)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    client.close()
    return results


CANDIDATES = {"threads": with_threads, "httpx": with_httpx, "aiohttp": with_aiohttp, "raw": with_raw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--step-ms", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    args = parser.parse_args()
    names = args.candidates.split(",")
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    n = 2 * args.concurrency
    with running(args.step_ms) as url:
        for r in range(args.repeats):
            for name in names:
                started = time.perf_counter()
                reads = CANDIDATES[name](url, n, args.concurrency, args.tokens)
                wall = time.perf_counter() - started
                got = [lag for rs in reads for lag in lags(rs)]
                if len(got) != n * args.tokens:
                    missing = n * args.tokens - len(got)
                    print(f"  {name}: {missing} of {n * args.tokens} tokens missing", file=sys.stderr)
                row = (len(got) / wall, (percentile(got, 50) or 0) * 1e3, (percentile(got, 99) or 0) * 1e3)
                runs[name].append(row)
                print(f"  {name} run {r + 1}: {row[0]:,.0f} tok/s, lag p50 {row[1]:.2f} ms, p99 {row[2]:.2f} ms",
                      file=sys.stderr, flush=True)  # fmt: skip
    offered = args.concurrency * 1000 / args.step_ms
    print(f"offered {offered:,.0f} tok/s ({args.concurrency} streams, a token each every {args.step_ms:g} ms)")
    print("client | tok/s taken in | lag p50 ms | lag p99 ms   (medians of", args.repeats, "runs)")
    for name, rows in runs.items():
        med = [statistics.median(col) for col in zip(*rows, strict=True)]
        print(f"{name} | {med[0]:,.0f} | {med[1]:.2f} | {med[2]:.2f}")


if __name__ == "__main__":
    main()
