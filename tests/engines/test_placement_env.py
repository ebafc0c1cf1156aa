"""An engine pinned to GPUs is started with CUDA_VISIBLE_DEVICES set to them: read from the real
server process's environment (/proc/PID/environ), the way the arena launches it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from playground.arena.core import Arena
from playground.engines.server import Engine
from playground.measure.specs import EngineSpec, SpecError, placement_env
from tests.conftest import DEVICE, SPEC_A, SPEC_B

TINY = Path(__file__).resolve().parents[2] / "assets" / "tiny" / "bf16"


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw if b"=" in item)


def test_the_engine_process_sees_only_its_gpus(tmp_path: Path) -> None:
    spec = EngineSpec(model=str(TINY), devices=(1, 3), max_model_len=256, enforce_eager=True)
    engine = Engine(spec, name="A", log_dir=tmp_path, env=placement_env(spec))
    engine.launch()
    try:
        deadline = time.monotonic() + 30
        while len(engine.pids()) < 2 and time.monotonic() < deadline:  # the guard, then the vLLM server
            time.sleep(0.1)
        pids = engine.pids()
        assert len(pids) >= 2
        for pid in pids:
            env = environ(pid)
            assert env["CUDA_VISIBLE_DEVICES"] == "1,3" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    finally:
        engine.stop()
    assert "--tensor-parallel-size 2" in (tmp_path / Path(engine.log_path or "").name).read_text().splitlines()[0]


def test_devices_on_the_cpu_are_refused_before_launch(tmp_path: Path) -> None:
    if DEVICE.kind != "cpu":
        pytest.fail("this test describes the CPU build; run it on the CPU machine")
    arena = Arena((SPEC_A, SPEC_B), data_dir=tmp_path, device=DEVICE)
    try:
        with pytest.raises(SpecError, match="devices=1: the CPU build has no GPUs; remove devices"):
            arena.start("B", EngineSpec(model=str(TINY), devices=(1,)))
        assert arena.slot("B").engine is None  # nothing was started
    finally:
        arena.shutdown()
