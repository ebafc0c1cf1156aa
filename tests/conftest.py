"""Shared fixtures: one pair of real vLLM CPU engines on the tiny checkpoints per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.arena import Arena
from playground.defaults import tiny_pair
from playground.monitor import device_info

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
