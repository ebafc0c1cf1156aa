"""CPU engines start warm (docs/NOTES.md): one launcher per app and environment imports vLLM once and forks each
engine's server. The session's pair came from one launcher, each engine is still its own guarded process tree
whose guard holds none of vLLM's memory, an engine whose environment differs where vLLM reads it at import
gets a launcher of its own, and when a launcher dies its engines go with it."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from playground.arena.core import Arena
from playground.engines import server
from playground.engines.cpu import cpu_engine_env
from playground.engines.launch_code import SERVER_MODULE, WARM_MARK
from playground.engines.server import Engine, EngineError
from playground.engines.warm import bound_cores, launch_key, launcher_for
from playground.measure.specs import EngineSpec
from tests.conftest import DEVICE, alive

TINY = Path(__file__).resolve().parents[2] / "assets" / "tiny" / "bf16"


def title(pid: int) -> str:
    """What ps shows for a process: its command line (which setproctitle rewrites), NULs as spaces."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


@pytest.mark.engine
def test_the_shared_pair_was_forked_from_one_warm_launcher(arena: Arena) -> None:
    if DEVICE.kind != "cpu":
        pytest.fail("this test describes the CPU build; run it on the CPU machine")
    launchers = set()
    for name in ("A", "B"):
        engine = arena.slot(name).engine
        assert engine is not None and engine.log_path is not None
        assert engine.log_path.read_text(errors="replace").count(WARM_MARK) == 1, f"{name} started cold"
        guard, server, *rest = engine.pids()
        assert rest, f"{name}: the engine core and worker are the server's children"
        assert psutil.Process(server).ppid() == guard
        assert "--adopt" in psutil.Process(guard).cmdline(), "the forked child replaced itself with the guard"
        launcher = psutil.Process(psutil.Process(guard).ppid())
        # vLLM's titles (set with setproctitle) show in ps for a forked engine as for a cold one
        assert title(server).startswith("VLLM::APIServer --model") and title(rest[-1]) == "VLLM::Worker"
        launchers.add(launcher.pid)
        # The guard is a plain Python: the sampler, which sums the tree, does not count vLLM's modules twice.
        assert psutil.Process(guard).memory_info().rss < launcher.memory_info().rss / 4
    (pid,) = launchers
    launcher = psutil.Process(pid)
    assert launcher.ppid() == os.getpid(), "this test process started the launcher"
    assert title(pid) == f"playground warm launcher of {SERVER_MODULE}"


def test_which_engines_share_a_launcher(tmp_path: Path) -> None:
    """Engines differ in their cores, KV space and API key (PER_ENGINE, read after start-up): one launcher.
    PYTHONPATH, or any other variable, may be read while importing: another launcher. A GPU engine (no CPU
    bind) and PLAYGROUND_WARM_START=0 start cold, and no launcher is started for them."""
    a = {**os.environ, **cpu_engine_env(0, DEVICE, cores=4), "VLLM_API_KEY": "one"}
    b = {**os.environ, **cpu_engine_env(1, DEVICE, cores=4), "VLLM_API_KEY": "two", "VLLM_CPU_KVCACHE_SPACE": "2"}
    assert (a["VLLM_CPU_OMP_THREADS_BIND"], b["VLLM_CPU_OMP_THREADS_BIND"]) == ("0-1", "2-3")
    assert launch_key("py", "/w", a) == launch_key("py", "/w", b)
    # OpenMP's default thread count comes from the cores the import ran on: one launcher per engine width
    assert launch_key("py", "/w", a) != launch_key("py", "/w", {**a, **cpu_engine_env(0, DEVICE, cores=2)})
    assert [bound_cores(b) for b in ("0-3", "4,5", "0-1|2-3", "7", "auto", "nobind", "")] == [4, 2, 4, 1, 0, 0, 0]
    assert launch_key("py", "/w", a) != launch_key("py", "/w", {**a, "PYTHONPATH": "/elsewhere"})
    assert launch_key("py", "/w", a) != launch_key("other-py", "/w", a)
    assert launch_key("py", "/w", a) != launch_key("py", "/other", a)
    gpu = {k: v for k, v in a.items() if k != "VLLM_CPU_OMP_THREADS_BIND"} | {"CUDA_VISIBLE_DEVICES": "0"}
    assert launcher_for("py", gpu, tmp_path) is None
    assert launcher_for("py", {**a, "PLAYGROUND_WARM_START": "0"}, tmp_path) is None
    assert not list(tmp_path.iterdir()), "no launcher was started"


# A stand-in for vLLM's API server module that only waits: enough to fork a server, guard it and kill the launcher.
STAND_IN = "import time\nif __name__ == '__main__':\n    time.sleep(300)\n"


def stand_in_python(tmp_path: Path) -> Path:
    """A Python whose `vllm.entrypoints.openai.api_server` is STAND_IN (it imports in milliseconds)."""
    package = tmp_path / "site" / Path(*SERVER_MODULE.split(".")[:-1])
    package.mkdir(parents=True)
    for level in range(len(SERVER_MODULE.split(".")) - 1):
        (tmp_path / "site" / Path(*SERVER_MODULE.split(".")[: level + 1]) / "__init__.py").write_text("")
    (package / "api_server.py").write_text(STAND_IN)
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={tmp_path / "site"} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return python


def test_the_servers_of_a_dead_launcher_go_with_it(tmp_path: Path) -> None:
    """SIGKILL a launcher (its own: another Python) once it has forked a server: the server's guard sees its
    parent change and kills the server's process group. The server is STAND_IN, not vLLM: what is tested is
    the launcher and the guard, the same for every server; real engines going with their app (and its launcher)
    are test_lifecycle.py's."""
    spec = EngineSpec(model=str(TINY), python=str(stand_in_python(tmp_path)))
    engine = Engine(spec, name="W", log_dir=tmp_path / "logs", env=cpu_engine_env(1, DEVICE))
    engine.launch()
    try:
        deadline = time.monotonic() + 60
        while len(engine.pids()) < 2:  # the guard, then the forked server
            assert engine.returncode() is None, engine.log_tail()
            assert time.monotonic() < deadline, "the launcher did not fork the server"
            time.sleep(0.1)
        pids = engine.pids()
        launcher = psutil.Process(pids[0]).ppid()
        assert launcher != os.getpid() and title(launcher) == f"playground warm launcher of {SERVER_MODULE}"
        os.kill(launcher, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while alive(pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive(pids) == [], "the server outlived its launcher"
        assert engine.returncode() is not None
        assert engine.status().state == "failed"
    finally:
        engine.stop()


def test_a_launcher_that_cannot_import_vllm_fails_its_engine_with_the_reason(tmp_path: Path) -> None:
    """The engine's Python fails as the launcher imports (here a script that says so after a second): the engine
    queued meanwhile fails, and its own log, which its card shows, carries the launcher's last lines. (A launcher
    already gone when the engine is sent to it starts the engine cold, which then fails on its own.)"""
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\nsleep 1\necho "ImportError: this vLLM is broken" >&2\nexit 1\n')  # as it imports
    python.chmod(0o755)
    spec = EngineSpec(model=str(TINY), python=str(python))
    engine = Engine(spec, name="X", log_dir=tmp_path / "logs", env=cpu_engine_env(0, DEVICE))
    engine.launch()
    with pytest.raises(EngineError):
        engine.wait_ready(timeout_s=60)
    log = engine.log_tail()
    assert "playground: the warm launcher ended" in log and "ImportError: this vLLM is broken" in log
    assert engine.status().state == "failed"


def test_a_launcher_closed_to_make_room_sends_a_late_engine_cold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another thread may have been given a launcher just before it was closed to make room: the launch then
    fails with OSError, and Engine starts that engine cold instead (its guard is this process's own child).
    The race is set up by handing Engine the closed launcher; a closed one is never handed out again."""
    spec = EngineSpec(model=str(TINY), python=str(stand_in_python(tmp_path)))
    env = {**os.environ, **cpu_engine_env(1, DEVICE), "PYTHONUNBUFFERED": "1"}
    launcher = launcher_for(str(spec.python), env, tmp_path / "logs")
    assert launcher is not None and launcher.idle
    launcher.close()
    with pytest.raises(OSError):
        launcher.launch([], env, tmp_path / "late.log", os.getcwd())
    assert launcher_for(str(spec.python), env, tmp_path / "logs") is not launcher
    monkeypatch.setattr(server, "launcher_for", lambda *_args: launcher)
    engine = Engine(spec, name="L", log_dir=tmp_path / "logs", env=cpu_engine_env(1, DEVICE))
    engine.launch()
    try:
        deadline = time.monotonic() + 30
        while not engine.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert psutil.Process(engine.pids()[0]).ppid() == os.getpid(), "started cold"
    finally:
        engine.stop()
