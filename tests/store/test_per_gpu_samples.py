"""History keeps memory per GPU (not only totals) across a restart, and the HTML export draws it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from playground.measure.records import MemorySample
from playground.store.report import runs_html, runs_json
from playground.store.sqlite import MIGRATIONS, HistoryStore

GIB = 2**30


def two_gpu_sample(t: float) -> MemorySample:
    """A at tensor parallel 2 on GPUs 0 and 1, B on GPU 1 (the issue-14 layout)."""
    return MemorySample(
        t,
        {"A": 158.65 * GIB, "B": 57.35 * GIB},
        device_used=217.23 * GIB,
        device_total=280.8 * GIB,
        source="NVML (GPU memory)",
        by_gpu={"A": {0: 79.33 * GIB, 1: 79.33 * GIB}, "B": {1: 57.35 * GIB}},
        gpus_used={0: 79.94 * GIB, 1: 137.29 * GIB},
    )


def test_per_gpu_series_survive_a_reopen_and_reach_the_exports(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    with HistoryStore(path) as store:
        session = store.open_session("2 x NVIDIA H200", {"A": "70B fp16", "B": "70B AWQ"})
        store.add_samples(session, [two_gpu_sample(100.0), two_gpu_sample(101.0)])
    with HistoryStore(path) as again:  # a restart: a new process reads the file
        samples = again.samples(session)
        info = again.session(session)
    assert info is not None
    assert samples == [two_gpu_sample(100.0), two_gpu_sample(101.0)]  # GPU indices come back as ints
    exported = json.loads(runs_json([], samples))["memory_samples"][0]
    assert exported["by_gpu"] == {"A": {"0": 79.33 * GIB, "1": 79.33 * GIB}, "B": {"1": 57.35 * GIB}}
    html = runs_html([], samples, "t", sessions=[info])
    for series in ("A: 70B fp16 on GPU 0", "A: 70B fp16 on GPU 1", "B: 70B AWQ on GPU 1", "GPU 0 used", "GPU 1 used"):
        assert f'"name":"{series}"' in html
    assert "B: 70B AWQ on GPU 0" not in html  # B never ran there


def test_a_file_from_before_keeps_its_totals(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for migration in MIGRATIONS[:2]:
        for statement in migration:
            db.execute(statement)
    db.execute("PRAGMA user_version=2")
    db.execute("INSERT INTO sessions (id, started_at, device, specs) VALUES ('s', 1.0, 'gpu', '{}')")
    db.execute(
        "INSERT INTO samples (session_id, t, engines, device_used, device_total, source)"
        " VALUES ('s', 2.0, '{\"A\": 5.0}', 6.0, 8.0, 'NVML (GPU memory)')"
    )
    db.commit()
    db.close()
    with HistoryStore(path) as store:
        (old,) = store.samples("s")
    assert (old.engines, old.device_used, old.by_gpu, old.gpus_used) == ({"A": 5.0}, 6.0, {}, {})
