"""Locked mode (a public instance) through the real app: visitors prompt within limits and cannot
reach engine controls, other models or local paths, not even through the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client

from playground.arena.core import Arena
from playground.arena.settings import AppSettings
from playground.measure.specs import EngineSpec
from playground.ui.app import build_ui, polled_gently

pytestmark = pytest.mark.engine
SETTINGS = AppSettings(locked=True, max_prompt_chars=200, max_tokens=32, requests_per_minute=3)
ENGINE_EVENTS = {"start_a", "start_b", "stop_a", "stop_b"}


@pytest.fixture(scope="module")
def locked(arena: Arena, data_dir: Path) -> Iterator[tuple[gr.Blocks, Arena]]:
    """A locked app over the session's two engines (attached, so nothing new starts)."""
    engines = [arena.slot(n).engine for n in ("A", "B")]
    specs = [EngineSpec(model="unused", endpoint=e.base_url, api_key=e.api_key) for e in engines if e]
    public = Arena(specs, data_dir=data_dir / "locked", device=arena.device, limits=SETTINGS.limits)
    for name in ("A", "B"):
        public.start(name)
    demo = build_ui(public, SETTINGS)
    polled_gently(demo.queue()).launch(prevent_thread_lock=True, server_port=None, quiet=True)
    try:
        yield demo, public
    finally:
        demo.close()
        public.shutdown()


def client(demo: gr.Blocks) -> Client:
    """A fresh visitor (its own session)."""
    return Client(demo.local_url, verbose=False)


def test_no_engine_control_exists_even_in_the_api(locked: tuple[gr.Blocks, Arena]) -> None:
    demo, _ = locked
    names = {d.get("api_name") for d in demo.config["dependencies"]}
    assert not names & ENGINE_EVENTS, "start/stop are not registered at all, not merely hidden"
    labels = " ".join(str(c.get("props", {}).get("label", "")) for c in demo.config["components"])
    assert "Extra engine arguments" not in labels and "attach to an existing" not in labels
    api = client(demo).view_api(return_format="dict", print_info=False)
    assert not {n.lstrip("/") for n in api["named_endpoints"]} & ENGINE_EVENTS
    with pytest.raises(ValueError):
        client(demo).predict("tiny/bf16", "awq", api_name="/start_b")
    # The engine servers themselves are loopback-only and want the per-launch key.
    engine = locked[1].slot("A").spec
    assert engine.endpoint.startswith("http://127.0.0.1:")
    assert httpx.get(engine.endpoint + "/v1/models", timeout=5).status_code == 401


def test_limits_are_enforced_with_clear_messages(locked: tuple[gr.Blocks, Arena]) -> None:
    demo, _ = locked
    visitor = client(demo)
    *_, message = visitor.predict("x" * 201, "fair", False, 0.0, 1.0, 8, 0, api_name="/compare")
    assert "201 characters; the limit here is 200" in message
    *_, message = visitor.predict("The function returns", "fair", False, 0.0, 1.0, 33, 0, api_name="/compare")
    assert "over this instance's limit of 32" in message
    summary, *_ = visitor.predict("The value", 8, "y" * 201, api_name="/quality")
    assert "perplexity text has 201 characters" in summary
    with pytest.raises(Exception, match="not in the list of choices|only its listed models"):
        visitor.predict("/etc", "H100-80GB", 4096, 0.9, 1, api_name="/plan")


def test_rate_limit_per_visitor(locked: tuple[gr.Blocks, Arena]) -> None:
    demo, _ = locked
    visitor, other = client(demo), client(demo)
    answers = [visitor.predict("The function returns", "fair", False, 0.0, 1.0, 4, 0, api_name="/compare")]
    answers += [visitor.predict("The value is", "fair", False, 0.0, 1.0, 4, 0, api_name="/compare") for _ in range(2)]
    assert all(a[0].strip() and a[1].strip() and a[4] == "" for a in answers), "three compares are allowed"
    *_, message = visitor.predict("The value is", "fair", False, 0.0, 1.0, 4, 0, api_name="/compare")
    assert "3 requests per minute per visitor; try again in" in message
    text_a, text_b, *_, message = other.predict("The value is", "fair", False, 0.0, 1.0, 4, 0, api_name="/compare")
    assert text_a.strip() and message == "", "another visitor is not held back"


def test_visitors_see_and_export_only_their_own_runs(locked: tuple[gr.Blocks, Arena]) -> None:
    demo, _ = locked
    mine, theirs = client(demo), client(demo)
    mine.predict("The function returns", "fair", False, 0.0, 1.0, 4, 0, api_name="/compare")
    theirs.predict("The value is", "fair", False, 0.0, 1.0, 4, 0, api_name="/compare")
    my_rows = mine.predict(api_name="/history")["data"]
    their_rows = theirs.predict(api_name="/history")["data"]
    assert [r[3] for r in my_rows] == ["The function returns"]
    assert [r[3] for r in their_rows] == ["The value is"]
    _, message = mine.predict(their_rows[0][0], "json", api_name="/export")
    assert message == f"✕ no saved run #{their_rows[0][0]} of yours"
    path, message = mine.predict(None, "csv", api_name="/export")
    assert "The value is" not in Path(path).read_text() and "The function returns" in Path(path).read_text()
