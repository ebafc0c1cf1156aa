"""Many streamed completions at once from one asyncio event loop: the sweep's load generator.

Each read from a socket is stamped with time.perf_counter() the moment it arrives and kept as
bytes; nothing else happens per token while the streams run (no JSON, no objects, no locks). The
SSE events are split and parsed after the streams end, each event timed by the read that
completed it. HTTP/1.1 is spoken directly over asyncio's transports because that measured best:
offered 10,240 tokens/s over 256 streams on a 2-core machine (bench/stream_clients.py), this took
in 9,330 with a token lag of 2.4 ms p50 / 15 ms p99, aiohttp 8,889 (8 / 82 ms), a thread per
stream with sync httpx 7,289 (5 / 132 ms) and httpx's async client 2,020 (148 / 1,863 ms);
docs/performance.md, "The load generator's own ceiling".
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from playground.engines.client import GenerationError, StreamOutcome, apply_event, refusal, request_body
from playground.engines.http1 import Connection, Endpoint, RawAnswer, Reads, send
from playground.measure.generation import GenerationParams

TICK_S = 0.1  # how often the loop reports progress and looks at the stop flag


async def stream_all(
    base_url: str,
    api_key: str,
    model: str,
    prompts: Sequence[str],
    params: GenerationParams,
    concurrency: int,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_tick: Callable[[int], None] | None = None,
    continuous_usage: bool = True,
) -> list[RawAnswer]:
    """Send every prompt, `concurrency` at a time, each worker on its own keep-alive connection.

    `on_tick(answers so far)` runs every TICK_S in this loop; an exception from it stops every
    stream and propagates. When `should_stop()` turns true the open streams are closed.
    """
    endpoint = Endpoint(base_url, api_key)
    path = "/v1/chat/completions" if params.chat else "/v1/completions"
    pending = list(reversed(prompts))
    answers: list[RawAnswer] = []
    connections: list[Connection] = []  # every connection opened, so that a stop can close them

    def wire(prompt: str) -> bytes:
        body = request_body(model, prompt, params)
        body["stream_options"]["continuous_usage_stats"] = continuous_usage
        return endpoint.request(path, body)

    async def worker() -> None:
        conn: Connection | None = None
        while pending and not should_stop():
            conn, answer = await send(endpoint, conn, wire(pending.pop()), connections)
            answers.append(answer)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def ticker(work: asyncio.Future[Any]) -> None:
        while not work.done():
            if should_stop():
                _abort(connections)  # the streams in flight end now, marked cancelled below
            if on_tick:
                on_tick(len(answers))
            await asyncio.sleep(TICK_S)

    work: asyncio.Future[Any] = asyncio.gather(*(worker() for _ in range(max(concurrency, 1))))
    tick: asyncio.Future[Any] = asyncio.ensure_future(ticker(work))
    try:
        await asyncio.wait([work, tick], return_when=asyncio.FIRST_COMPLETED)
        if tick.done() and (failure := tick.exception()):  # on_tick raised: stop the streams, say why
            work.cancel()
            _abort(connections)
            with suppress(asyncio.CancelledError):
                await work  # let the workers unwind before the error leaves the loop
            raise failure
        await work
    finally:
        tick.cancel()
        for c in connections:  # none is left open for the next level's loop (each level has its own)
            if c.transport is not None:
                c.transport.close()
    if should_stop():
        for a in answers:
            if a.error.startswith("the engine stopped in the middle"):
                a.error = "cancelled"
    return answers


def _abort(connections: list[Connection]) -> None:
    for c in connections:
        c.stopped = True
        if c.transport is not None:
            c.transport.abort()


def run_streams(
    base_url: str,
    api_key: str,
    model: str,
    prompts: Sequence[str],
    params: GenerationParams,
    concurrency: int,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_tick: Callable[[int], None] | None = None,
    continuous_usage: bool = True,
) -> list[StreamOutcome]:
    """stream_all in a fresh event loop in this thread, then every answer parsed (in arrival order)."""
    with _no_collection_pauses():
        raw = asyncio.run(
            stream_all(
                base_url,
                api_key,
                model,
                prompts,
                params,
                concurrency,
                should_stop=should_stop,
                on_tick=on_tick,
                continuous_usage=continuous_usage,
            )
        )
    return [parse_answer(a) for a in raw]


@contextmanager
def _no_collection_pauses() -> Iterator[None]:
    """No cyclic-GC pass while the streams run: a full pass over the growing list of reads paused the
    loop for milliseconds and doubled the p99 lag in bench/generator_ceiling.py. Objects alive
    before are frozen (as vLLM's benchmark does); garbage made meanwhile is collected afterwards."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()


def sse_events(reads: Reads) -> list[tuple[float, bytes]]:
    """The SSE `data:` payloads in `reads`, each with the arrival time of the read that completed it."""
    events: list[tuple[float, bytes]] = []
    rest = b""
    for t, data in reads:
        rest += data
        *complete, rest = rest.split(b"\n\n")
        for event in complete:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    events.append((t, line[5:].strip()))
    return events


def parse_answer(answer: RawAnswer) -> StreamOutcome:
    """The outcome of one request from its timed body bytes, as playground.client builds it live."""
    outcome = StreamOutcome(sent_at=answer.sent_at, finished_at=answer.finished_at, error=answer.error)
    body = b"".join(data for _, data in answer.reads)
    if answer.status and answer.status != 200:
        outcome.error = refusal(answer.status, body)
        return outcome
    seen = 0
    try:
        for t, data in sse_events(answer.reads):
            if data == b"[DONE]":
                break
            seen = apply_event(outcome, json.loads(data), t, seen)
    except GenerationError as exc:
        outcome.error = str(exc)
    except ValueError as exc:
        outcome.error = outcome.error or f"streaming failed: {type(exc).__name__}: {exc}"
    return outcome
