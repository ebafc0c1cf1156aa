"""Many visitors at once through the real app and the real engines (bounded, loopback only).

32 simulated visitors each open their own session, keep the page's 1 s refresh going and send one
compare. Every compare must complete or get Gradio's clear "Queue is full! Please try again."; no
other error and no hung stream. Prints p50/p95 time to first token as the visitor saw it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError

from playground.arena.core import Arena
from playground.arena.settings import AppSettings
from playground.measure.metrics import percentile
from playground.ui.app import build_ui, with_queue

pytestmark = pytest.mark.engine
VISITORS = 32
BUSY = "Queue is full! Please try again."


def launch(arena: Arena, settings: AppSettings) -> gr.Blocks:
    demo = build_ui(arena, settings)
    with_queue(demo, settings).launch(prevent_thread_lock=True, server_port=None, quiet=True)
    return demo


@pytest.fixture()
def app(arena: Arena) -> Iterator[gr.Blocks]:
    demo = launch(arena, AppSettings())  # the defaults the app ships with: concurrency 8, queue 64
    try:
        yield demo
    finally:
        demo.close()


def visit(url: str, prompt: str) -> dict[str, object]:
    """One visitor: the page's refresh ticking, one compare; what they saw and when."""
    client = Client(url, verbose=False)
    done = threading.Event()

    def tick() -> None:
        while not done.wait(1.0):
            try:
                client.predict(api_name="/refresh")
            except QueueError:
                pass  # a full queue refuses refreshes too; the page tries again next second

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    sent = time.perf_counter()
    first: float | None = None
    try:
        job = client.submit(prompt, "fair", False, 0.0, 1.0, 16, 0, api_name="/compare")
        while not job.done():
            outputs = job.outputs()
            if first is None and outputs and outputs[-1][0]:
                first = time.perf_counter()
            time.sleep(0.01)
        text_a, text_b, _, _, message = job.result(timeout=300)
        first = first or time.perf_counter()
        return {"outcome": "done", "a": text_a, "b": text_b, "message": message, "ttft_s": first - sent}
    except QueueError as exc:
        return {"outcome": "busy", "message": str(exc)}
    except AppError as exc:
        return {"outcome": "error", "message": str(exc)}
    finally:
        done.set()
        ticker.join(timeout=5)
        client.close()


def run_visitors(url: str, count: int) -> list[dict[str, object]]:
    prompts = ["The function returns", "The default value is", "This module provides", "Return the"]
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(visit, url, prompts[i % len(prompts)]) for i in range(count)]
        return [f.result(timeout=600) for f in futures]


def test_32_visitors_all_answered(app: gr.Blocks, arena: Arena) -> None:
    before = len(arena.history)
    started = time.perf_counter()
    results = run_visitors(app.local_url, VISITORS)
    wall = time.perf_counter() - started
    done = [r for r in results if r["outcome"] == "done"]
    busy = [r for r in results if r["outcome"] == "busy"]
    ttfts = [float(r["ttft_s"]) * 1000 for r in done]  # type: ignore[arg-type]
    engine_ttft = [r.timing.ttft_ms for r in arena.history[before:] if r.timing.ttft_ms is not None]
    print(
        f"\n{VISITORS} visitors in {wall:.1f} s: {len(done)} answered, {len(busy)} refused as busy; "
        f"time to first token seen by the visitor p50 {percentile(ttfts, 50):,.0f} ms, "
        f"p95 {percentile(ttfts, 95):,.0f} ms; engine TTFT p50 {percentile(engine_ttft, 50):,.0f} ms, "
        f"p95 {percentile(engine_ttft, 95):,.0f} ms"
    )
    assert [r for r in results if r["outcome"] == "error"] == []
    assert all(r["message"] == BUSY for r in busy)
    assert len(done) + len(busy) == VISITORS
    assert len(done) == VISITORS, "a queue of 64 holds 32 visitors: nobody should be turned away"
    assert all(r["a"] and r["b"] and r["message"] == "" for r in done), [r for r in done if r["message"]]
    assert len(arena.history) - before == 2 * VISITORS, "every compare reached both engines"


def test_a_full_queue_says_busy_retry(arena: Arena) -> None:
    demo = launch(arena, AppSettings(concurrency=1, queue_size=2))
    try:
        results = run_visitors(demo.local_url, 12)
    finally:
        demo.close()
    outcomes = [r["outcome"] for r in results]
    assert "error" not in outcomes
    assert outcomes.count("busy") >= 1, "12 visitors into 1 running + 2 waiting places: some are told to retry"
    assert all(r["message"] == BUSY for r in results if r["outcome"] == "busy")
    assert all(r["a"] and r["b"] for r in results if r["outcome"] == "done")
