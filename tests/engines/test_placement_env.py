"""An engine pinned to GPUs is started with CUDA_VISIBLE_DEVICES set to them: read from the real
server process's environment (/proc/PID/environ), the way the arena launches it. A CPU engine's worker
binds its threads to its own cores, also when the launcher forks it (the playground's default there), and
all of its processes run on those cores only."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from playground.arena.core import Arena
from playground.engines.server import CPU_FORK_MARK, CPU_PIN_MARK, WARM_MARK, Engine
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
        assert psutil.Process(pids[0]).ppid() == os.getpid(), "a GPU engine starts cold, its guard our child"
        for pid in pids[:2]:  # the guard and the server: a child of the server may already have exited (no environ)
            env = environ(pid)
            assert env["CUDA_VISIBLE_DEVICES"] == "1,3" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    finally:
        engine.stop()
    log = (tmp_path / Path(engine.log_path or "").name).read_text()
    assert "--tensor-parallel-size 2" in log.splitlines()[0]
    assert WARM_MARK not in log


@pytest.mark.engine
def test_cpu_engines_fork_and_stay_on_their_own_cores(arena: Arena) -> None:
    """The launcher forks the engine core and worker on the CPU (docs/NOTES.md): each shared engine's log
    says so once, vLLM's worker still binds its OpenMP threads to the cores the playground gave it, and every
    process of the engine (API server, engine core, worker) may run on those cores only."""
    if DEVICE.kind != "cpu":
        pytest.fail("this test describes the CPU build; run it on the CPU machine")
    bound = []
    for name in ("A", "B"):
        engine = arena.slot(name).engine
        assert engine is not None and engine.log_path is not None
        log = engine.log_path.read_text(errors="replace")
        assert log.count(CPU_FORK_MARK) == 1, f"{name}: the launcher did not fork"
        wanted = engine.extra_env["VLLM_CPU_OMP_THREADS_BIND"]
        cores = [int(c) for c in log.split("core ids=[", 1)[1].split("]", 1)[0].split(",")]
        lo, _, hi = wanted.partition("-")
        assert cores == list(range(int(lo), int(hi or lo) + 1)), f"{name}: bound to {cores}, given {wanted}"
        assert f"{CPU_PIN_MARK} {cores}" in log
        guard, *server = engine.pids()  # the playground's guard, then the vLLM server and its children
        assert len(server) >= 3, "the API server, the engine core and the worker"
        for pid in server:
            assert sorted(os.sched_getaffinity(pid)) == cores, f"{name}: process {pid} may leave its cores"
        bound.append(cores)
    assert not set(bound[0]) & set(bound[1]), "A and B share no core"


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
