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

from playground.arena.core import Arena
from playground.store.sqlite import HistoryStore
from tests.conftest import alive

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]

APP = """
import json, sys
from pathlib import Path
from playground.arena.core import Arena
from playground.measure.specs import EngineSpec
spec = EngineSpec(model="tiny/bf16", gpu_memory_utilization=0.25, max_model_len=512, enforce_eager=True)
arena = Arena((spec, spec), data_dir=Path(sys.argv[1]))
arena.start("A")
print(json.dumps(arena.slot("A").engine.pids()), flush=True)
sys.stdin.read()  # wait to be killed
"""


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
        launcher = psutil.Process(pids[0]).ppid()  # on the CPU the warm launcher the guard was forked from
        pids += [launcher] if launcher != app.pid else []
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
        deadline = time.monotonic() + 20
        while alive(pids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert alive(pids) == [], "the guard took the engine down with the app (and the launcher ended)"
    finally:
        app.kill()


COMPARER = """
import json, sys
from pathlib import Path
from playground.arena.core import Arena
from playground.measure.generation import GenerationParams
from playground.measure.specs import EngineSpec
urls, keys = sys.argv[2].split(","), sys.argv[3].split(",")
specs = [EngineSpec(model="unused", endpoint=u, api_key=k) for u, k in zip(urls, keys)]
arena = Arena(specs, data_dir=Path(sys.argv[1]), sample_interval_s=0.2)
for name in "AB":
    arena.start(name)
print(json.dumps({"session": arena.saved.session_id}), flush=True)
params = GenerationParams(max_tokens=48, temperature=0.0, chat=False)
while True:  # compares until killed; each line is printed after its run was saved
    progress = list(arena.compare("The function returns", params))[-1]
    print(json.dumps({"run": progress.run_id, "a": progress.texts["A"]}), flush=True)
"""


def test_sigkill_mid_compare_loses_no_saved_run(arena: Arena, tmp_path: Path) -> None:
    engines = [arena.slot(n).engine for n in ("A", "B")]
    urls = ",".join(e.base_url for e in engines if e)
    keys = ",".join(e.api_key for e in engines if e)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    app = subprocess.Popen(
        [sys.executable, "-c", COMPARER, str(tmp_path), urls, keys], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert app.stdout is not None
        session = json.loads(app.stdout.readline())["session"]
        reported = [json.loads(app.stdout.readline()) for _ in range(3)]
        time.sleep(0.15)  # the next compare is streaming now
        os.kill(app.pid, signal.SIGKILL)
        app.wait(timeout=10)
    finally:
        app.kill()
    with HistoryStore(tmp_path / "history.sqlite") as store:
        saved = {r.id: r for r in store.runs(session, limit=None)}
        assert store.samples(session), "the memory series was saved as it was sampled"
        assert store._read("PRAGMA integrity_check")[0][0] == "ok"
    for line in reported:
        run = saved[line["run"]]
        assert [a.slot for a in run.answers] == ["A", "B"]
        assert run.answers[0].text == line["a"] and run.answers[0].timing is not None
