"""HTTP/1.1 over asyncio's transports for the sweep's streams: one keep-alive connection per stream,
every read stamped with time.perf_counter() the moment it arrives and kept as body bytes (the
chunked framing undone as it comes, nothing parsed). Why not an HTTP library: engines/stream_async.py.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playground.engines.client import TIMEOUT

Reads = list[tuple[float, bytes]]  # (arrival time, body bytes of that read)


@dataclass
class RawAnswer:
    """One request as it came off the wire: body bytes per read, each with its arrival time."""

    sent_at: float
    reads: Reads = field(default_factory=list)
    finished_at: float = 0.0
    status: int = 0
    error: str = ""


class Connection(asyncio.Protocol):
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


class Endpoint:
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

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        coro = loop.create_connection(Connection, self.host, self.port, ssl=self.ssl)
        _, conn = await asyncio.wait_for(coro, TIMEOUT.connect)
        return conn


async def send(
    endpoint: Endpoint, conn: Connection | None, wire: bytes, opened: list[Connection]
) -> tuple[Connection | None, RawAnswer]:
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
        return await send(endpoint, None, wire, opened)
    return (conn if conn.reusable else None), answer
