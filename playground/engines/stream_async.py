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
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playground.engines.client import TIMEOUT, GenerationError, StreamOutcome, apply_event, refusal, request_body
from playground.measure.generation import GenerationParams

TICK_S = 0.1  # how often the loop reports progress and looks at the stop flag
Reads = list[tuple[float, bytes]]  # (arrival time, body bytes of that read)


@dataclass
class RawAnswer:
    """One request as it came off the wire: body bytes per read, each with its arrival time."""

    sent_at: float
    reads: Reads = field(default_factory=list)
    finished_at: float = 0.0
    status: int = 0
    error: str = ""


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: stamps every read and undoes the chunked framing."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.answer: RawAnswer | None = None
        self.done: asyncio.Future[None] | None = None
        self.last_read = 0.0
        self.reusable = True
        self.stopped = False  # closed by a stop, not by the server: never retried
        self._buf = b""
        self._state = "head"  # head -> size -> data -> size ... -> end; or head -> length -> end
        self._left = 0  # bytes left in the current chunk (or the whole body for content-length)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def expect(self, answer: RawAnswer, done: asyncio.Future[None]) -> None:
        self.answer, self.done = answer, done
        self._buf, self._state, self._left = b"", "head", 0

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()  # before anything else: this is the token's arrival
        self.last_read = now
        answer = self.answer
        if answer is None or self.done is None or self.done.done():
            return
        body = self._unframe(data)
        if body:
            answer.reads.append((now, body))
        if self._state == "end":
            answer.finished_at = now
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self.answer is not None and self.done is not None and not self.done.done():
            self.answer.error = "the engine stopped in the middle of the answer (connection closed)"
            self.answer.finished_at = time.perf_counter()
            self.done.set_result(None)

    def _unframe(self, data: bytes) -> bytes:
        """The body bytes in `data` (HTTP/1.1 chunked or content-length framing); advances the state."""
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos = 0
        while True:
            if self._state in ("data", "length"):
                take = min(self._left, len(buf) - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._left -= take
                if self._left:
                    break
                if self._state == "length":
                    self._state = "end"
                    break
                self._state = "crlf"
            elif self._state == "crlf":
                if len(buf) - pos < 2:
                    break
                pos += 2
                self._state = "size"
            elif self._state == "size":
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    break
                self._left = int(buf[pos:end].split(b";")[0], 16)
                pos = end + 2
                self._state = "data" if self._left else "trailer"
            elif self._state == "trailer":
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    break
                self._state = "end" if end == pos else "trailer"
                pos = end + 2
            elif self._state == "head":
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    break
                self._head(buf[pos:end])
                pos = end + 4
            else:  # end: anything after the answer is not ours
                break
        self._buf = buf[pos:] if self._state not in ("end",) else b""
        return b"".join(out)

    def _head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        assert self.answer is not None
        self.answer.status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip().lower() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        if headers.get("connection") == "close":
            self.reusable = False
        if "chunked" in headers.get("transfer-encoding", ""):
            self._state = "size"
        else:
            self._left = int(headers.get("content-length", "0"))
            self._state = "length" if self._left else "end"


class _Endpoint:
    """Where the requests go, and the bytes of each request."""

    def __init__(self, base_url: str, api_key: str):
        url = urlsplit(base_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if url.scheme == "https" else None
        self.prefix = url.path.rstrip("/")
        self.auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""

    def request(self, path: str, body: dict[str, Any]) -> bytes:
        payload = json.dumps(body).encode()
        head = (
            f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.auth}"
            f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode() + payload

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        coro = loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl)
        _, conn = await asyncio.wait_for(coro, TIMEOUT.connect)
        return conn


async def _send(
    endpoint: _Endpoint, conn: _Connection | None, wire: bytes, opened: list[_Connection]
) -> tuple[_Connection | None, RawAnswer]:
    """One request on `conn` (a new connection, added to `opened`, when None or closed); waits for
    the whole answer. A kept-alive connection that the server closed before answering is retried
    once on a new one."""
    reused = conn is not None and conn.reusable and conn.transport is not None and not conn.transport.is_closing()
    answer = RawAnswer(sent_at=time.perf_counter())
    if not reused:
        try:
            conn = await endpoint.connect()
        except (OSError, TimeoutError):
            answer.error, answer.finished_at = "the engine is not reachable (it may have stopped)", time.perf_counter()
            return None, answer
        opened.append(conn)
    assert conn is not None and conn.transport is not None
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    conn.expect(answer, done)
    conn.last_read = answer.sent_at
    conn.transport.write(wire)
    read_s = TIMEOUT.read or 120.0
    while not done.done():  # a read timeout without a timer per read: look every few seconds
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout=min(read_s, 5.0))
        except TimeoutError:
            if time.perf_counter() - conn.last_read > read_s:
                answer.error = f"no token from the engine for {read_s:.0f} s: gave up"
                answer.finished_at = time.perf_counter()
                conn.transport.abort()
                return None, answer
    if reused and answer.error and not answer.status and not conn.stopped:
        return await _send(endpoint, None, wire, opened)
    return (conn if conn.reusable else None), answer


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
    endpoint = _Endpoint(base_url, api_key)
    path = "/v1/chat/completions" if params.chat else "/v1/completions"
    pending = list(reversed(prompts))
    answers: list[RawAnswer] = []
    connections: list[_Connection] = []  # every connection opened, so that a stop can close them

    def wire(prompt: str) -> bytes:
        body = request_body(model, prompt, params)
        body["stream_options"]["continuous_usage_stats"] = continuous_usage
        return endpoint.request(path, body)

    async def worker() -> None:
        conn: _Connection | None = None
        while pending and not should_stop():
            conn, answer = await _send(endpoint, conn, wire(pending.pop()), connections)
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
    if should_stop():
        for a in answers:
            if a.error.startswith("the engine stopped in the middle"):
                a.error = "cancelled"
    return answers


def _abort(connections: list[_Connection]) -> None:
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
