"""The history store on real SQLite files: round trips, WAL, order, windows, threads, reopening, SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from playground.measure.generation import GenerationParams
from playground.measure.metrics import RequestTiming
from playground.measure.records import CompareRun, EngineAnswer, MemorySample
from playground.store.sqlite import SCHEMA_VERSION, HistoryStore, StoreError

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0


def make_run_args(n: int) -> dict[str, Any]:
    """The n-th compare of a session, deterministic so a reader can check it is intact."""
    timing = RequestTiming(
        ttft_ms=12.5 + n,
        decode_tok_s=0.1 + 0.2,  # not exact in binary: must come back bit for bit
        itl_p50_ms=7.25,
        itl_p95_ms=None,
        e2e_ms=250.0 + n,
        prompt_tokens=None,
        output_tokens=n,
        bursty=n % 2 == 0,
    )
    a = EngineAnswer(
        "A",
        "A: tiny",
        "org/tiny",
        "auto",
        text=f"answer {n} ‹ünïcode› <b>",
        timing=timing,
        memory_mb=1234.5,
        finish_reason="length",
        engine_notes=("loaded bf16", "fallback kernel"),
    )
    b = EngineAnswer("B", "B: tiny · awq", "org/tiny-awq", "awq", text="", timing=None, error=f"boom {n}")
    return {
        "number": n,
        "prompt": f"prompt {n}\nsecond line",
        "mode": "fair" if n % 2 else "simultaneous",
        "params": GenerationParams(max_tokens=16 + n, temperature=0.7, top_p=0.9, seed=None, chat=False),
        "answers": (a, b),
        "started_at": T0 + n,
        "finished_at": T0 + n + 0.5,
    }


def assert_is_run(run: CompareRun | None, session_id: str, n: int) -> None:
    """The stored run equals the n-th compare field for field."""
    expected = make_run_args(n)
    assert run is not None
    assert run.session_id == session_id
    assert run.number == n
    assert run.prompt == expected["prompt"]
    assert run.mode == expected["mode"]
    assert run.params == asdict(expected["params"])
    assert run.answers == expected["answers"]
    assert (run.started_at, run.finished_at) == (expected["started_at"], expected["finished_at"])


def sample(t: float, a: float | None = 1e9) -> MemorySample:
    return MemorySample(
        t, {"A": a, "B": None}, device_used=5e9 + t, device_total=8e9, source="RSS (host memory, psutil)"
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with HistoryStore(tmp_path / "data" / "history.sqlite") as s:
        yield s


def test_a_run_with_two_answers_round_trips(store: HistoryStore) -> None:
    session = store.open_session("CPU (2 cores)", {"A": "tiny bf16", "B": "tiny awq"})
    saved = store.save_run(session, **make_run_args(3))
    assert_is_run(saved, session, 3)
    loaded = store.run(saved.id)
    assert loaded == saved
    assert loaded is not None
    a, b = loaded.answers
    assert a.timing is not None and a.timing.bursty is False and a.timing.prompt_tokens is None
    assert isinstance(a.engine_notes, tuple)
    assert b.timing is None and b.error == "boom 3" and b.memory_mb is None and b.finish_reason is None
    assert store.run(saved.id + 1) is None


def test_the_file_is_in_wal_mode_with_a_schema_version(store: HistoryStore) -> None:
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
    db.close()
    assert store.schema_version() == SCHEMA_VERSION


def test_runs_newest_first_per_session_and_sessions_counted(store: HistoryStore) -> None:
    first = store.open_session("gpu", {"A": "a", "B": "b"})
    second = store.open_session("gpu", {"A": "a2", "B": "b2"})
    for n in (1, 2, 3):
        store.save_run(first, **make_run_args(n))
    store.save_run(second, **make_run_args(4))
    assert [r.number for r in store.runs()] == [4, 3, 2, 1]
    assert [r.number for r in store.runs(first)] == [3, 2, 1]
    assert [r.number for r in store.runs(first, limit=2)] == [3, 2]
    assert [r.number for r in store.runs(second, limit=None)] == [4]
    assert store.runs("no such session") == []
    counts = {s.id: (s.runs, s.specs, s.device) for s in store.sessions()}
    assert counts == {first: (3, {"A": "a", "B": "b"}, "gpu"), second: (1, {"A": "a2", "B": "b2"}, "gpu")}
    info = store.session(first)
    assert info is not None and info.runs == 3
    assert store.session("nope") is None


def test_samples_in_a_time_window(store: HistoryStore) -> None:
    session = store.open_session("cpu", {})
    other = store.open_session("cpu", {})
    series = [sample(T0 + i, a=None if i == 4 else 1e9 + i) for i in range(10)]
    store.add_samples(session, series[:5])
    for s in series[5:]:
        store.add_sample(session, s)
    store.add_sample(other, sample(T0 + 3))
    assert store.samples(session) == series
    assert store.samples(session, start=T0 + 3, end=T0 + 6) == series[3:7]
    assert store.samples(session, start=T0 + 8) == series[8:]
    assert store.samples(session, end=T0 + 0.5) == series[:1]
    assert store.samples(session, start=T0 + 20) == []


def test_a_failed_save_leaves_nothing_behind(store: HistoryStore) -> None:
    session = store.open_session("cpu", {})
    args = make_run_args(1)
    args["answers"] = (args["answers"][0], replace(args["answers"][1], text=None))  # NOT NULL fails on answer 2
    with pytest.raises(sqlite3.IntegrityError):
        store.save_run(session, **args)
    with pytest.raises(sqlite3.IntegrityError):  # unknown session: foreign keys are on
        store.save_run("no such session", **make_run_args(2))
    assert store.runs() == []
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0
    db.close()


def test_concurrent_writers_lose_nothing(store: HistoryStore) -> None:
    session = store.open_session("cpu", {"A": "a", "B": "b"})
    saved: list[CompareRun] = []
    errors: list[BaseException] = []

    def write_runs(offset: int) -> None:
        try:
            for n in range(offset, offset + 25):
                saved.append(store.save_run(session, **make_run_args(n)))
                store.runs(session, limit=5)  # reads interleave with the writes
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    def write_samples() -> None:
        try:
            for i in range(100):
                store.add_sample(session, sample(T0 + i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write_runs, args=(k * 100,)) for k in range(4)]
    threads.append(threading.Thread(target=write_samples))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.id for r in saved}) == 100
    stored = store.runs(session, limit=None)
    assert sorted(r.number for r in stored) == sorted(r.number for r in saved)
    for run in stored:
        assert_is_run(run, session, run.number)
    assert [s.t for s in store.samples(session)] == [T0 + i for i in range(100)]


def test_reopening_the_file_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    with HistoryStore(path) as store:
        session = store.open_session("cuda: H100", {"A": "a", "B": "b"})
        ids = [store.save_run(session, **make_run_args(n)).id for n in (1, 2)]
        store.add_sample(session, sample(T0))
        before = (store.runs(), store.sessions(), store.samples(session))
    store.close()  # twice is fine
    with HistoryStore(path) as again:
        assert (again.runs(), again.sessions(), again.samples(session)) == before
        assert [again.run(i) for i in ids] == list(reversed(before[0]))
        assert again.schema_version() == SCHEMA_VERSION


def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    HistoryStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema"):
        HistoryStore(path)


WRITER = """
import sys
from pathlib import Path
from playground.store.sqlite import HistoryStore
from tests.store.test_store import T0, make_run_args, sample
store = HistoryStore(Path(sys.argv[1]))
session = store.open_session("cpu", {"A": "a", "B": "b"})
print(session, flush=True)
n = 0
while True:
    n += 1
    run = store.save_run(session, **make_run_args(n))
    print(run.id, n, flush=True)
    store.add_sample(session, sample(T0 + n))
"""


def test_sigkill_mid_run_loses_no_saved_run(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        session = proc.stdout.readline().strip()
        printed: list[tuple[int, int]] = []
        while len(printed) < 30:
            line = proc.stdout.readline()
            assert line, f"the writer stopped early: {proc.stderr.read() if proc.stderr else ''}"
            run_id, n = map(int, line.split())
            printed.append((run_id, n))
        proc.send_signal(signal.SIGKILL)  # while it is writing: no close, no checkpoint
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with HistoryStore(path) as store:
        for run_id, n in printed:
            assert_is_run(store.run(run_id), session, n)
        stored = store.runs(session, limit=None)
        assert len(stored) >= len(printed)
        for run in stored:  # a run is there whole or not at all
            assert_is_run(run, session, run.number)
        assert len(store.samples(session)) >= len(printed) - 1
