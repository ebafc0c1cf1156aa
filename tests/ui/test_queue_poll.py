"""The app's queue looks for work every 10 ms, not every millisecond (Gradio's default: 5.6 % of a core for an
idle app here, docs/NOTES.md), and events still go through it and run."""

from __future__ import annotations

import gradio as gr
from gradio_client import Client

from playground.arena.settings import AppSettings
from playground.ui.app import PROGRESS_POLL_S, QUEUE_POLL_S, with_queue


def test_the_queue_polls_gently_and_still_runs_events() -> None:
    with gr.Blocks() as demo:
        box = gr.Textbox()
        out = gr.Textbox()
        box.submit(lambda text: text[::-1], box, out, api_name="reverse")
    queued = with_queue(demo, AppSettings())
    queue = queued._queue  # Gradio's own queue object: what its processing loop sleeps on
    assert queue.sleep_when_free == QUEUE_POLL_S == 0.01
    assert queue.progress_update_sleep_when_free == PROGRESS_POLL_S
    queued.launch(prevent_thread_lock=True, server_port=None, quiet=True)
    try:
        client = Client(queued.local_url, verbose=False)
        assert [client.predict(word, api_name="/reverse") for word in ("abc", "queue")] == ["cba", "eueuq"]
    finally:
        queued.close()
