"""No engine outlives the app, even when the app is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parent.parent

APP = """
import json, sys
from pathlib import Path
from playground.arena import Arena
from playground.specs import EngineSpec
spec = EngineSpec(model="tiny/bf16", gpu_memory_utilization=0.25, max_model_len=512, enforce_eager=True)
arena = Arena((spec, spec), data_dir=Path(sys.argv[1]))
arena.start("A")
print(json.dumps(arena.slot("A").engine.pids()), flush=True)
sys.stdin.read()  # wait to be killed
"""


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def test_sigkilled_app_leaves_no_engine_behind(data_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    app = subprocess.Popen(
        [sys.executable, "-c", APP, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert app.stdout is not None
        pids = json.loads(app.stdout.readline())
        assert len(alive(pids)) >= 2, "the guard, the server and its engine core are running"
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
        deadline = time.monotonic() + 20
        while alive(pids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert alive(pids) == [], "the guard took the engine down with the app"
    finally:
        app.kill()
