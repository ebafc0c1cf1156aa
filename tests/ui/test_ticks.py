"""Page ticks answered from bytes (ui/ticks.py), through a real Gradio server and real HTTP POSTs:
what a page gets from the stored bytes is what Gradio's own route returns for the same build, the
page counts as a visitor, and anything but a plain tick is Gradio's to answer."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import gradio as gr
import httpx
import pytest

from playground.arena.core import Arena
from playground.arena.settings import AppSettings
from playground.ui.app import build_ui, launch_options, with_queue
from playground.ui.ticks import PageTicks

pytestmark = pytest.mark.engine
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}
TIMING = ("duration", "average_duration")  # Gradio's own timing of the call: differs per call


@pytest.fixture()
def app(arena: Arena) -> Iterator[gr.Blocks]:
    settings = AppSettings(locked=True)
    demo = build_ui(arena, settings)
    options = {k: v for k, v in launch_options(settings, demo).items() if k in ("max_threads", "app_kwargs")}
    with_queue(demo, settings).launch(prevent_thread_lock=True, server_port=None, quiet=True, **options)
    live = demo.live  # type: ignore[attr-defined]
    for build in (live.cards_build, live.charts_build):
        build.max_age_s = 600.0  # one build for the whole test: stored bytes and Gradio's answer share it
    try:
        yield demo
    finally:
        demo.close()


def ticks_of(demo: gr.Blocks) -> PageTicks:
    """The middleware instance in the server's ASGI stack (built on the first request)."""
    layer: Any = demo.server_app.middleware_stack  # type: ignore[union-attr]
    while layer is not None and not isinstance(layer, PageTicks):
        layer = getattr(layer, "app", None)
    assert layer is not None, "PageTicks is in the app's middleware stack"
    return layer


def tick(http: httpx.Client, demo: gr.Blocks, name: str, **body: Any) -> httpx.Response:
    response = http.post(f"{demo.local_url}gradio_api/run/{name}", json={"data": [], **body})
    assert response.status_code == 200, response.text[:300]
    return response


def fn_of(demo: gr.Blocks, name: str) -> int:
    """The function id Gradio gives the event with this api name."""
    return next(i for i, fn in demo.fns.items() if fn.api_name == name)


def without_timing(response: httpx.Response) -> dict[str, Any]:
    return {k: v for k, v in json.loads(response.content).items() if k not in TIMING}


@pytest.mark.parametrize("name", ["refresh", "refresh_charts"])
def test_a_stored_tick_is_what_gradio_returns(app: gr.Blocks, name: str) -> None:
    session = secrets.token_hex(6)
    with httpx.Client(timeout=60, headers=BROWSER) as http:
        tick(http, app, name, session_hash=session)  # a new page: Gradio answers, and builds its state
        ticks = ticks_of(app)
        served, passed = ticks.served, ticks.passed
        own_fn = fn_of(app, name)
        stored = tick(http, app, name, session_hash=session, fn_index=own_fn, trigger_id=7, event_data=None)
        assert (ticks.served, ticks.passed) == (served + 1, passed), "answered from the stored bytes"
        # simple_format is not a plain tick's: Gradio's own route answers it, for the same build.
        own = tick(http, app, name, session_hash=session, simple_format=False)
        assert (ticks.served, ticks.passed) == (served + 1, passed + 1), "answered by Gradio"
    assert without_timing(stored) == without_timing(own)
    assert set(json.loads(stored.content)) == set(json.loads(own.content)), "every key Gradio sends"
    for header in ("content-type", "content-encoding"):  # still compressed by Gradio's middleware
        assert stored.headers.get(header) == own.headers.get(header), header
    assert len(json.loads(stored.content)["data"]) == (3 if name == "refresh" else 5), "the event's outputs"


def test_a_stored_tick_counts_the_page_as_a_visitor(app: gr.Blocks, arena: Arena) -> None:
    with httpx.Client(timeout=60, headers=BROWSER) as http:
        tick(http, app, "refresh", session_hash=secrets.token_hex(6))  # the stored answer exists
        page = secrets.token_hex(6)
        app.state_holder[page]  # a page Gradio knows (it opened through the page's load events)
        before, served = arena.room.visitors(), ticks_of(app).served
        tick(http, app, "refresh", session_hash=page)
    assert ticks_of(app).served == served + 1
    assert arena.room.visitors() == before + 1, "the room panel counts the page"


def test_other_requests_go_to_gradio(app: gr.Blocks) -> None:
    session = secrets.token_hex(6)
    with httpx.Client(timeout=60, headers=BROWSER) as http:
        tick(http, app, "refresh", session_hash=session)
        ticks = ticks_of(app)
        served, passed = ticks.served, ticks.passed
        # Inputs where the event has none: Gradio's route answers it, whatever it says.
        http.post(f"{app.local_url}gradio_api/run/refresh", json={"data": ["x"], "session_hash": session})
        unknown = tick(http, app, "refresh", session_hash=secrets.token_hex(6))  # a page Gradio has not seen
        assert json.loads(unknown.content)["data"]
    assert ticks.served == served
    assert ticks.passed == passed + 2


def test_a_tick_naming_another_function_is_never_stored(app: gr.Blocks) -> None:
    """Gradio obeys a body's fn_index over the route's name: a POST to /run/refresh that names the charts'
    function gets the charts from Gradio, and the pages' stored refresh answer stays the refresh."""
    session = secrets.token_hex(6)
    with httpx.Client(timeout=60, headers=BROWSER) as http:
        plain = tick(http, app, "refresh", session_hash=session)
        ticks = ticks_of(app)
        passed = ticks.passed
        other = tick(http, app, "refresh", session_hash=secrets.token_hex(6), fn_index=fn_of(app, "refresh_charts"))
        assert ticks.passed == passed + 1, "Gradio answered it"
        assert len(json.loads(other.content)["data"]) == 5, "with the charts' outputs"
        again = tick(http, app, "refresh", session_hash=session)
    assert without_timing(again) == without_timing(plain), "the pages still get the refresh"
