"""The Gradio app driven through its real server with gradio_client, on the real engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client

from playground.arena.core import Arena

pytestmark = pytest.mark.engine


def test_compare_through_the_ui(client: Client) -> None:
    text_a, text_b, figs_a, figs_b, message = client.predict(
        "The function returns", "fair", False, 0.0, 1.0, 16, 0, api_name="/compare"
    )
    assert text_a.strip() and text_b.strip()
    assert "TTFT" in figs_a and "tok/s" in figs_b
    assert message == ""


def test_refresh_shows_ready_engines_the_room_and_charts(client: Client) -> None:
    client.predict(api_name="/refresh_charts")  # the charts' build reads each engine's weights check
    card_a, card_b, room = client.predict(api_name="/refresh")
    assert "ready" in card_a and "ready" in card_b
    assert "KV cache" in card_a and "predicted weights" in card_a
    assert "**The room:**" in room and "vLLM's batch" in room
    memory, latency, anatomy, kv_use, history = client.predict(api_name="/refresh_charts")
    assert all(fig is not None for fig in (memory, latency, anatomy, kv_use))
    assert history["data"], "the history table lists the requests made so far"


def test_saved_history_and_exports(client: Client, arena: Arena) -> None:
    client.predict("The value is", "fair", False, 0.0, 1.0, 8, 0, api_name="/compare")
    rows = client.predict(api_name="/history")["data"]
    newest = rows[0]
    assert newest[3] == "The value is" and newest[4].startswith("A:") and newest[7].startswith("B:")
    for fmt in ("html", "json", "csv"):
        path, message = client.predict(newest[0], fmt, api_name="/export")
        assert message.startswith("Saved playground-run-"), message
        text = Path(path).read_text()
        assert "The value is" in text
    session, message = client.predict(None, "html", api_name="/export")
    html = Path(session).read_text()
    assert "js-plotly-plot" in html or "plotly-graph-div" in html
    assert 'src="http' not in html, "the report opens offline"
    _, message = client.predict(999_999, "json", api_name="/export")
    assert message == "✕ no saved run #999999"


def test_bad_input_is_explained_not_crashed(client: Client) -> None:
    *_, message = client.predict("", "fair", True, 0.0, 1.0, 16, 0, api_name="/compare")
    assert "empty" in message
    *_, message = client.predict("hi", "fair", True, 0.0, 1.0, 0, 0, api_name="/compare")
    assert "max_tokens must be at least 1" in message


def test_unsupported_method_is_refused_before_launch(client: Client, arena: Arena) -> None:
    form = ["tiny/bf16", "fp8", "auto", 0.25, 512, "auto", True, 1, "", "", "", ""]
    card = client.predict(*form, api_name="/start_b")
    assert "Not started" in card and "CPU" in card
    assert arena.status("B").state == "ready", "the running engine was left alone"


def test_quality_summary_and_planner_tabs(client: Client) -> None:
    summary, pane_a, pane_b, kl_plot = client.predict("The default value is", 16, "", api_name="/quality")
    assert "Agreement" in summary and "Mean KL" in summary
    assert pane_a and pane_b and kl_plot is not None
    table, chart = client.predict(api_name="/summary")
    assert len(table["data"]) == 2 and chart is not None
    plan = client.predict("meta-llama/Llama-2-70b-hf", "H100-80GB", 4096, 0.9, 1, api_name="/plan")
    rows = {r[0]: r for r in plan["data"]}
    assert rows["bf16"][5] == "no" and rows["awq-4bit"][5] == "yes"
    two = {
        r[0]: r
        for r in client.predict("meta-llama/Llama-2-70b-hf", "H100-80GB", 4096, 0.9, 2, api_name="/plan")["data"]
    }
    assert two["bf16"][2] == 2 and two["bf16"][5] == "yes" and two["awq-4bit"][2] == 1  # fp16 needs two H100s
