"""Bad inputs and faults against the real things: the app through its HTTP API (gradio_client and raw
requests), the core, the CLI and app.py as processes, and real vLLM engines. docs/bad-inputs.md is
the table of what each one gets; every row there names its test.

This conftest holds what the four files share: the apps they drive and the helpers that drive them.
Tests marked `engine` use the session's two tiny vLLM CPU engines or start (and watch fail) engines
of their own; the others start no vLLM engine (what they send is refused before it reaches one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import pytest
from gradio_client import Client

from playground.arena.core import Arena
from playground.arena.settings import AppSettings
from playground.engines.server import EngineError
from playground.measure.generation import GenerationParams
from playground.measure.specs import EngineSpec, SpecError
from playground.ui.app import build_ui
from tests.conftest import DEVICE, SPEC_A, SPEC_B

ROOT = Path(__file__).resolve().parents[2]
LOCKED = AppSettings(locked=True, max_prompt_chars=200, max_tokens=32, requests_per_minute=3)
# A 512-token engine (tiny), greedy, a handful of tokens: cheap on two shared CPU cores.
FEW = GenerationParams(max_tokens=6, temperature=0.0, chat=False)


def launch(arena: Arena, settings: AppSettings | None = None) -> gr.Blocks:
    demo = build_ui(arena, settings)
    demo.queue().launch(prevent_thread_lock=True, server_port=None, quiet=True)
    return demo


def compare(client: Client, prompt: str, **changes: Any) -> tuple[str, str, str, str, str]:
    """The Compare button through the API: (answer A, answer B, figures A, figures B, message)."""
    form = {"mode": "fair", "chat": False, "temperature": 0.0, "top_p": 1.0, "max_tokens": 6, "seed": 0, **changes}
    out = client.predict(prompt, *form.values(), api_name="/compare")
    return tuple(out)  # type: ignore[return-value]


def raw_call(url: str, api: str, data: list[Any]) -> tuple[str, Any]:
    """POST /gradio_api/call/<api> with a body gradio_client would not send (json.dumps writes NaN and
    \\udcff escapes); returns the last SSE event and its data, or ("HTTP <code>", text)."""
    body = json.dumps({"data": data}).encode("ascii")
    posted = httpx.post(f"{url}gradio_api/call/{api}", content=body, headers={"content-type": "application/json"})
    if posted.status_code != 200:
        return f"HTTP {posted.status_code}", posted.text
    stream = httpx.get(f"{url}gradio_api/call/{api}/{posted.json()['event_id']}", timeout=120).text
    events = [block.split("\n") for block in stream.strip().split("\n\n")]
    event, data_line = events[-1][0], events[-1][1]
    return event.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))


def queue_join(url: str, fn_index: int, data: list[Any], session: str) -> tuple[int, dict[str, Any]]:
    """Call an event by its index, as the browser does (POST /gradio_api/queue/join); private events
    have an index too. Returns the HTTP status of the join and the completed message."""
    joined = httpx.post(
        f"{url}gradio_api/queue/join",
        json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None},
    )
    if joined.status_code != 200:
        return joined.status_code, {}
    with httpx.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}, timeout=60) as s:
        for line in s.iter_lines():
            if line.startswith("data:") and '"process_completed"' in line:
                return 200, json.loads(line[5:])
    raise AssertionError("the queue stream ended without a completed event")


def run(cmd: list[str | bytes], *, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=600, **kw)


def cli(*args: str | bytes, data: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "playground", *args], env={"PLAYGROUND_DATA": str(data)}, **kw)


def failed_start(spec: EngineSpec, data: Path, timeout_s: float = 600) -> tuple[str, float, list[int]]:
    """Start `spec` in slot A of a fresh arena and expect it to fail: (message, seconds, pids seen)."""
    arena = Arena((spec, spec), data_dir=data, device=DEVICE)
    seen: list[int] = []

    def watch(_: object) -> None:
        if engine := arena.slot("A").engine:
            seen.extend(p for p in engine.pids() if p not in seen)

    started = time.monotonic()
    try:
        with pytest.raises((EngineError, SpecError)) as failure:
            arena.start("A", timeout_s=timeout_s, on_progress=watch)
        assert arena.status("A").state == "failed" and arena.status("A").message == str(failure.value)
    finally:
        arena.shutdown()
    return str(failure.value), time.monotonic() - started, seen


def attached(arena: Arena, **changes: Any) -> list[EngineSpec]:
    """Specs that attach to the session's two engines (nothing new starts)."""
    engines = [arena.slot(n).engine for n in ("A", "B")]
    specs = [EngineSpec(model="unused", endpoint=e.base_url, api_key=e.api_key) for e in engines if e]
    return [replace(s, **changes) for s in specs]


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Arena]]:
    """The open app over a tiny pair that is not started."""
    arena = Arena((SPEC_A, SPEC_B), data_dir=tmp_path_factory.mktemp("idle"), device=DEVICE)
    demo = launch(arena)
    try:
        yield demo.local_url, arena
    finally:
        demo.close()
        arena.shutdown()


@pytest.fixture(scope="module")
def locked_idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[gr.Blocks, Arena]]:
    """A locked (public) app, engines not started."""
    data = tmp_path_factory.mktemp("locked-idle")
    arena = Arena((SPEC_A, SPEC_B), data_dir=data, device=DEVICE, limits=LOCKED.limits)
    demo = launch(arena, LOCKED)
    try:
        yield demo, arena
    finally:
        demo.close()
        arena.shutdown()


@pytest.fixture(scope="module")
def open_app(arena: Arena) -> Iterator[str]:
    """The open app over the session's two engines."""
    demo = launch(arena)
    try:
        yield demo.local_url
    finally:
        demo.close()
