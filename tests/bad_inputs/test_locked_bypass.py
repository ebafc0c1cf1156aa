"""What a script can try against a public (locked) instance: hidden events, new sessions to dodge the rate limit."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client

from playground.arena.core import Arena
from tests.bad_inputs.conftest import (
    LOCKED,
    attached,
    compare,
    launch,
    queue_join,
    raw_call,
)
from tests.conftest import DEVICE


def test_locked_hidden_events_cannot_be_reached(locked_idle: tuple[gr.Blocks, Arena]) -> None:
    demo, arena = locked_idle
    url = demo.local_url
    # the start/stop events do not exist: no api name, no index
    for api in ("start_a", "start_b", "stop_a", "stop_b"):
        assert raw_call(url, api, ["tiny/bf16"]) == ("HTTP 500", "Internal Server Error")
    deps = demo.config["dependencies"]
    assert queue_join(url, len(deps), ["tiny/bf16"], "script-1")[0] == 500
    index = {d["api_name"]: i for i, d in enumerate(deps)}
    # the private events (Enter in the prompt box, the planner's other inputs) check what the public ones do
    _, done = queue_join(url, index["compare_1"], ["The value", "fair", False, 0.0, 1.0, 33, 0], "script-2")
    assert done["output"]["data"][4] == "✕ max_tokens 33 is over this instance's limit of 32"
    _, done = queue_join(url, index["compare_1"], ["y" * 201, "fair", False, 0.0, 1.0, 8, 0], "script-3")
    assert done["output"]["data"][4] == "✕ the prompt has 201 characters; the limit here is 200"
    for private in ("run", "run_1", "run_2", "run_3"):  # GPU, context, utilization, GPU count
        _, done = queue_join(url, index[private], ["/etc", "H100-80GB", 4096, 0.9, 1], "script-4")
        assert done["success"] is False and done["output"]["error"].startswith("Value: /etc is not in the list")
    assert arena.slot("A").engine is None and arena.slot("B").engine is None


@pytest.mark.engine
def test_new_session_per_request_dodges_the_rate_limit(arena: Arena, tmp_path: Path) -> None:
    """The per-visitor limit counts per Gradio session; a script opens a new session per request.
    What bounds such a script is the queue (concurrency + queue_size, tests/ui/test_load.py)."""
    public = Arena(attached(arena), data_dir=tmp_path, device=DEVICE, limits=LOCKED.limits)
    for name in ("A", "B"):
        public.start(name)
    demo = launch(public, LOCKED)
    try:
        same = Client(demo.local_url, verbose=False)
        messages = [compare(same, "The value", max_tokens=4)[4] for _ in range(4)]
        assert messages[:3] == ["", "", ""]
        assert messages[3].startswith("✕ this instance allows 3 requests per minute per visitor; try again in")
        fresh = [compare(Client(demo.local_url, verbose=False), "The value", max_tokens=4) for _ in range(4)]
        assert all(a and b and m == "" for a, b, _, _, m in fresh), "each new session is a new visitor"
    finally:
        demo.close()
        public.shutdown()
