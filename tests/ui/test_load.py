"""A room full of visitors on one instance, through the real app and the real engines (bounded,
loopback only): their compares run together and vLLM batches them, no page's refresh is refused and
its cost does not grow with the pages, a visitor who leaves is cancelled at the engine, a full queue
says "busy"."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError

from playground.arena.core import Arena
from playground.arena.settings import AppSettings
from playground.engines.client import fetch_metrics
from playground.ui.app import build_ui, launch_options, with_queue

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]
BUSY = "Queue is full! Please try again."


def launch(arena: Arena, settings: AppSettings) -> gr.Blocks:
    demo = build_ui(arena, settings)
    options = {k: v for k, v in launch_options(settings).items() if k == "max_threads"}
    with_queue(demo, settings).launch(prevent_thread_lock=True, server_port=None, quiet=True, **options)
    return demo


@pytest.fixture()
def app(arena: Arena) -> Iterator[gr.Blocks]:
    demo = launch(arena, AppSettings(locked=True))  # the defaults a public instance ships with
    try:
        yield demo
    finally:
        demo.close()


def test_a_class_of_12_is_batched_by_vllm(app: gr.Blocks, arena: Arena) -> None:
    """bench/class_load.py against this app: 12 visitors with polling pages send a compare at once."""
    before = len(arena.history)
    engines = {n: arena.slot(n).engine for n in "AB"}
    flags = [
        f
        for n, e in engines.items()
        if e
        for f in (f"--engine-{n.lower()}", e.base_url, f"--key-{n.lower()}", e.api_key)
    ]
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "class_load.py"), "--url", app.local_url, *flags,
         "--app-pid", str(os.getpid()), "--visitors", "12", "--compares", "1", "--max-tokens", "64", "--json"],
        capture_output=True, text=True, timeout=900, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"\nclass of 12: {json.dumps(result)}")
    assert (result["answered"], result["refused"], result["refresh_refused"]) == (12, 0, 0), result
    assert result["refresh_answered"] > 0 and result["refresh_queued"] is False
    peaks = result["peak_running"]
    assert peaks["A"] > 1 and peaks["B"] > 1, f"vLLM ran the compares together on each engine: {peaks}"
    mine = arena.history[before:]
    assert len(mine) == 24, "every compare reached both engines"
    assert max(r.shared_with or 0 for r in mine if r.slot == "A") > 1, "the answers say they shared the engine"
    assert result["direct_wall_s"]["A"] and result["ratio"], "the reference streams ran"


def test_refresh_work_does_not_grow_with_the_pages(app: gr.Blocks) -> None:
    """The same seconds with 1 open page and with 30: as many snapshots built, no tick refused. Pages
    tick like a browser's timers, outside the queue: cards each second, charts every third."""

    def poll(pages: int, seconds: float) -> tuple[int, int]:
        live = app.live  # type: ignore[attr-defined]
        builds = live.builds
        stop = threading.Event()
        codes: list[int] = []

        def page() -> None:
            session = secrets.token_hex(6)
            with httpx.Client(timeout=30) as http:
                for tick in range(10_000):
                    if stop.is_set():
                        return
                    began = time.monotonic()
                    for name in ("refresh", "refresh_charts") if tick % 3 == 0 else ("refresh",):
                        url = f"{app.local_url}gradio_api/run/{name}"
                        codes.append(http.post(url, json={"data": [], "session_hash": session}).status_code)
                    stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))

        with ThreadPoolExecutor(pages) as pool:
            for _ in range(pages):
                pool.submit(page)
            time.sleep(seconds)
            stop.set()
        assert set(codes) == {200}, f"every tick answered: {sorted(set(codes))}"
        return live.builds - builds, len(codes)

    one, ticks_one = poll(1, 6.0)
    thirty, ticks_thirty = poll(30, 6.0)
    print(f"\nsnapshots built in 6 s: {one} for 1 page ({ticks_one} ticks), {thirty} for 30 ({ticks_thirty} ticks)")
    # The bound is the builds' own rate (one of each part per max_age_s), the same for any number of
    # pages; comparing the two counts to each other would measure the machine's load, not the app.
    bound = 2 * (6 / 0.5 + 2)
    assert 1 <= one <= bound and 1 <= thirty <= bound, "at most one build of each part per max_age_s"
    assert ticks_thirty >= 10 * ticks_one, "30 pages ticked many times as often ..."
    assert ticks_thirty >= 5 * thirty, "... and many ticks were answered from each build"


def test_a_visitor_who_leaves_mid_compare_is_cancelled_at_the_engine(app: gr.Blocks, arena: Arena) -> None:
    """The page closes (its event stream drops) while A streams: A's request ends, B's never starts."""
    config = httpx.get(f"{app.local_url}config").json()
    fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "compare")
    session = secrets.token_hex(6)
    before = len(arena.history)
    body = {
        "data": ["The default value is", "fair", False, 1.0, 1.0, 256, 7],
        "fn_index": fn,
        "session_hash": session,
        "event_data": None,
    }
    assert httpx.post(f"{app.local_url}gradio_api/queue/join", json=body).status_code == 200
    streaming = False
    with httpx.stream("GET", f"{app.local_url}gradio_api/queue/data", params={"session_hash": session}) as events:
        for line in events.iter_lines():
            if '"process_generating"' in line and arena.room.in_flight("A") == 1:
                streaming = True
                break  # the tab closes: the event stream is dropped mid-answer
    assert streaming, "A was streaming when the page left"
    deadline = time.monotonic() + 30
    while arena.room.in_flight("A") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert arena.room.in_flight("A") == 0, "the room panel no longer counts the visitor's request"
    engine = arena.slot("A").engine
    assert engine is not None
    while (fetch_metrics(engine.base_url).requests_running or 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not fetch_metrics(engine.base_url).requests_running, "vLLM aborted the request"
    time.sleep(1.0)
    mine = arena.history[before:]
    assert [r.slot for r in mine] == ["A"] and mine[0].error == "cancelled", mine
    assert arena.room.in_flight("B") == 0, "B's request was never sent"


def visit(url: str, prompt: str) -> dict[str, object]:
    """One visitor through gradio_client (which joins the queue for every event): one compare."""
    client = Client(url, verbose=False)
    try:
        job = client.submit(prompt, "fair", False, 0.0, 1.0, 16, 0, api_name="/compare")
        text_a, text_b, _, _, message = job.result(timeout=300)
        return {"outcome": "done", "a": text_a, "b": text_b, "message": message}
    except QueueError as exc:
        return {"outcome": "busy", "message": str(exc)}
    except AppError as exc:
        return {"outcome": "error", "message": str(exc)}
    finally:
        client.close()


def test_a_full_queue_says_busy_retry(arena: Arena) -> None:
    """Past concurrency + queue_size (here 1 + 2, far below the defaults): Gradio's own "busy, retry"."""
    demo = launch(arena, AppSettings(concurrency=1, queue_size=2))
    try:
        prompts = ["The function returns", "The default value is", "This module provides", "Return the"]
        with ThreadPoolExecutor(max_workers=12) as pool:
            futures = [pool.submit(visit, demo.local_url, prompts[i % len(prompts)]) for i in range(12)]
            results = [f.result(timeout=600) for f in futures]
    finally:
        demo.close()
    outcomes = [r["outcome"] for r in results]
    assert "error" not in outcomes
    assert outcomes.count("busy") >= 1, "12 visitors into 1 running + 2 waiting places: some are told to retry"
    assert all(r["message"] == BUSY for r in results if r["outcome"] == "busy")
    assert all(r["a"] and r["b"] for r in results if r["outcome"] == "done")
