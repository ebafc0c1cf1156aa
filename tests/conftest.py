"""Shared fixtures: one pair of real vLLM CPU engines on the tiny checkpoints per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.arena import Arena
from playground.specs import EngineSpec

CPU = {"gpu_memory_utilization": 0.25, "max_model_len": 512, "enforce_eager": True}
SPEC_A = EngineSpec(model="tiny/bf16", label="tiny bf16", **CPU)  # type: ignore[arg-type]
SPEC_B = EngineSpec(model="tiny/awq", label="tiny AWQ", quantization="awq", **CPU)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh data folder (logs, the tiny build) for the session."""
    return tmp_path_factory.mktemp("playground-data")


@pytest.fixture(scope="session")
def arena(data_dir: Path) -> Iterator[Arena]:
    """Two real vLLM servers (bf16 and AWQ 4-bit of the tiny model), started one after the other."""
    core = Arena((SPEC_A, SPEC_B), data_dir=data_dir, sample_interval_s=0.5)
    started = core.start_all()
    problems = {n: s for n, s in started.items() if isinstance(s, str)}
    if problems:
        core.shutdown()
        pytest.fail(f"engines did not start: {problems}")
    yield core
    core.shutdown()
