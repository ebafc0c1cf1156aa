"""Shared fixtures: one pair of real vLLM CPU engines on the tiny checkpoints per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import psutil
import pytest
from gradio_client import Client

from playground.arena.core import Arena
from playground.arena.defaults import tiny_pair
from playground.engines.monitor import device_info
from playground.ui.app import build_ui

DEVICE = device_info()
# bf16 against AWQ 4-bit where this CPU's vLLM build has the 4-bit kernel (AVX-512), else against
# online int8 weight-only (AVX2 machines such as this project's CI): see docs/NOTES.md.
SPEC_A, SPEC_B = tiny_pair(DEVICE)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh data folder (logs, the tiny build) for the session."""
    return tmp_path_factory.mktemp("playground-data")


@pytest.fixture(scope="session")
def arena(data_dir: Path) -> Iterator[Arena]:
    """Two real vLLM servers (bf16 and a quantized tiny model), started one after the other."""
    core = Arena((SPEC_A, SPEC_B), data_dir=data_dir, device=DEVICE, sample_interval_s=0.5)
    started = core.start_all()
    problems = {n: s for n, s in started.items() if isinstance(s, str)}
    if problems:
        core.shutdown()
        pytest.fail(f"engines did not start: {problems}")
    yield core
    core.shutdown()


@pytest.fixture(scope="session")
def client(arena: Arena) -> Iterator[Client]:
    """The app (open mode) over the session's engines, served for real, and a client of it."""
    demo: gr.Blocks = build_ui(arena)
    demo.queue().launch(prevent_thread_lock=True, server_port=None, quiet=True)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def alive(pids: list[int]) -> list[int]:
    """The pids that still run (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out
