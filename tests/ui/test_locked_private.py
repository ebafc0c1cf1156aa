"""Nothing private reaches a visitor of a locked instance: every endpoint a visitor can call, the
page's config and every export, swept for the host's paths, the engines' ports and API keys."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client

from playground.arena.core import Arena
from playground.arena.settings import AppSettings
from playground.ui.app import build_ui, polled_gently
from playground.ui.public import private_of

pytestmark = pytest.mark.engine
ABSOLUTE = re.compile(r"(?<![\w.~/:-])/(?:[\w.@+-]+/?)+")
# Every endpoint a visitor can call, with arguments; a new one fails the sweep until it is listed here.
CALLS: dict[str, list[tuple[object, ...]]] = {
    "/compare": [("The value is", "fair", False, 0.0, 1.0, 4, 0), ("x" * 300, "fair", False, 0.0, 1.0, 4, 0)],
    "/quality": [("The value is", 4, "The default value is none.")],
    "/summary": [()],
    "/history": [()],
    "/export": [(None, "json"), (None, "csv"), (None, "html"), (999_999, "json")],
    "/plan": [("Qwen/Qwen2.5-0.5B", "H100-80GB", 4096, 0.9, 1)],
    "/refresh": [()],
    "/refresh_charts": [()],
    "/summary_accuracy": [()],
    "/accuracy_latest": [()],
    "/export_accuracy": [("json",), ("csv",), ("html",)],
}


@pytest.fixture(scope="module")
def public(arena: Arena) -> Iterator[gr.Blocks]:
    """The session's engines (local tiny checkpoints, launched here) behind a locked app."""
    demo = build_ui(arena, AppSettings(locked=True, max_prompt_chars=200))
    polled_gently(demo.queue()).launch(prevent_thread_lock=True, server_port=None, quiet=True)
    try:
        yield demo
    finally:
        demo.close()


def _texts(value: object, downloads: set[str]) -> list[str]:
    """Every string a visitor received, files' contents instead of where the client saved them."""
    if isinstance(value, str) and os.path.isfile(value):
        downloads.add(value)
        return [Path(value).read_text()]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v, downloads)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v, downloads)]
    return [json.dumps(value, default=str)]


def test_nothing_private_in_any_visitor_reachable_output(public: gr.Blocks, arena: Arena) -> None:
    visitor = Client(public.local_url, verbose=False)
    named = set(visitor.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert named == set(CALLS), "every visitor endpoint is swept"
    seen: list[str] = [httpx.get(public.local_url + "config", timeout=10).text]
    downloads: set[str] = set()
    for api_name, calls in CALLS.items():
        for args in calls:
            try:
                seen += _texts(visitor.predict(*args, api_name=api_name), downloads)
            except Exception as exc:  # a gr.Error's message reaches the visitor too
                seen.append(str(exc))
    private = private_of(arena)
    # The sweep has something to find: local model folders, engine logs on ports, per-launch keys.
    assert private.ports and private.keys and any(p.startswith("/") for p in private.paths)
    text = "\n".join(seen)
    for path in private.paths:
        assert path.rstrip("/") not in text, f"host path {path} reached a visitor"
    host_paths = {m for m in ABSOLUTE.findall(text) if len(m) > 1 and os.path.exists(m) and m not in downloads}
    assert not host_paths, f"host paths reached a visitor: {sorted(host_paths)[:5]}"
    for port in private.ports:
        assert not re.search(rf":{port}\b|\b{port}\.log\b", text), f"engine port {port} reached a visitor"
    for key in private.keys:
        assert key not in text, "an API key reached a visitor"
    # What a visitor should still see: each local model by its folder name, and real answers.
    for name in ("A", "B"):
        engine = arena.slot(name).engine
        assert engine is not None and Path(engine.spec.model).is_absolute()  # a local checkpoint
        assert Path(engine.spec.model).name in text, f"{name}'s model shows by its folder name"
