"""Page ticks answered from bytes: every open page POSTs `/gradio_api/run/refresh` each second and
`/refresh_charts` every few (ui/live.py), and every page gets the same values. Gradio's own route
(dependencies, session state, `process_api`, postprocessing, JSON) cost ~2 ms a tick, most of a core
for a room of 100 pages. This ASGI middleware lets Gradio answer the first tick of each build and
sends its exact response (status, headers, body) to every other page until the build is replaced,
recording each page as seen for the room panel as the handler would.

It depends on Gradio 6.31's internals (docs/NOTES.md, "Gradio 6.31"): the route's path, the body
the browser sends, and that the answer depends on nothing in the request but `simple_format`.
A request it does not recognise, or a Blocks with `auth`, goes to Gradio as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from playground.ui.live import LiveRefresh, SharedBuild

RUN_PREFIX = "/gradio_api/run/"
TICKS = ("refresh", "refresh_charts")  # api names of the page's two timers (ui/app.py)
# What the browser's Gradio client sends with a tick; none of it changes the answer.
PLAIN_KEYS = frozenset({"data", "session_hash", "event_data", "fn_index", "trigger_id", "event_id"})


@dataclass(frozen=True)
class _Answer:
    """Gradio's response to a tick, and the build it came from."""

    source: tuple[Any, ...]
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class PageTicks:
    """ASGI middleware (innermost, under Gradio's CORS and compression): ticks served from bytes."""

    def __init__(
        self,
        app: ASGIApp,
        live: LiveRefresh,
        auth: Callable[[], bool] = lambda: False,
        known: Callable[[str], bool] = lambda _: True,
        fn_index: Callable[[str], int | None] = lambda _: None,
    ):
        self.app = app
        self.builds: dict[str, SharedBuild] = {"refresh": live.cards_build, "refresh_charts": live.charts_build}
        self.seen = live.arena.room.seen
        self.auth = auth  # True where the Blocks has a login: then every tick goes through Gradio's check
        # Whether Gradio holds this session's state: a new page's first tick goes through Gradio, which
        # builds it then (~35 ms), as before, and not when the visitor's first compare starts.
        self.known = known
        # The tick's own function id: Gradio obeys a body's `fn_index` over the route's name, so a tick
        # naming another function is passed through and never stored as this tick's answer.
        self.fn_index = fn_index
        self._answers: dict[str, _Answer] = {}
        self.served = 0  # ticks answered from bytes (tests and benchmarks read these two)
        self.passed = 0  # ticks Gradio answered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = _tick_name(scope)
        if name is None or self.auth():
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the page went away before its tick was read: nothing to answer
            return
        session = _plain_session(body, self.fn_index(name))
        answer = self._stored(name, session)
        if answer is not None:
            self.seen(session or None)
            self.served += 1
            await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
            await send({"type": "http.response.body", "body": answer.body})
            return
        # Gradio answers (its handler builds the values in a worker thread and records the visitor).
        self.passed += 1
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, _replay(body, receive), capture)
        headers = list(start.get("headers", []))
        encoded = any(k.lower() == b"content-encoding" for k, _ in headers)
        if session is not None and start.get("status") == 200 and not encoded:
            # Stored against the build now current: at worst a page gets values one build older.
            if (built := self.builds[name].fresh()) is not None:
                self._answers[name] = _Answer(built, 200, headers, b"".join(chunks))

    def _stored(self, name: str, session: str | None) -> _Answer | None:
        """The stored answer, if it is of the current build and the tick may have it."""
        answer = self._answers.get(name)
        if session is None or answer is None or (session and not self.known(session)):
            return None
        return answer if answer.source is self.builds[name].fresh() else None


def _tick_name(scope: Scope) -> str | None:
    """The tick's api name for a POST to /gradio_api/run/refresh(_charts), else None."""
    if scope["type"] != "http" or scope.get("method") != "POST":
        return None
    path: str = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if not path.startswith(RUN_PREFIX):
        return None
    name = path[len(RUN_PREFIX) :].rstrip("/")
    return name if name in TICKS else None


def _plain_session(body: bytes, fn_index: int | None) -> str | None:
    """The session hash of a tick as the browser sends it ('' without one), or None for anything
    else (inputs, `simple_format`, a batch, another function's `fn_index`): Gradio answers those."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or set(parsed) - PLAIN_KEYS or parsed.get("data") != []:
        return None
    if parsed.get("fn_index") is not None and parsed.get("fn_index") != fn_index:
        return None
    session = parsed.get("session_hash")
    return session if isinstance(session, str) else ""


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands Gradio the body already read, then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
