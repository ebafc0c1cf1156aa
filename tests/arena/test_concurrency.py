"""Compares from many visitors at once on real vLLM CPU engines: the load each answer records is the
number of requests really in flight beside it, and an engine that dies under 30 streams costs each
visitor one sentence while the other engine's answers still arrive and are saved."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from playground.arena.core import Arena
from playground.measure.generation import GenerationParams
from playground.measure.records import EngineAnswer, RequestRecord
from playground.measure.specs import EngineSpec
from tests.conftest import DEVICE

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]
LONG = GenerationParams(max_tokens=48, temperature=0.0, chat=False, ignore_eos=True)


def together(arena: Arena, count: int, params: GenerationParams, mode: str = "fair") -> list[list[EngineAnswer]]:
    """`count` compares released at the same moment, each from its own thread (its own visitor)."""
    barrier = threading.Barrier(count)
    out: list[list[EngineAnswer]] = []

    def one(i: int) -> None:
        barrier.wait()
        progress = list(arena.compare("The function returns", params, mode, visitor=f"visitor-{i}"))
        out.append([progress[-1].answers[n] for n in ("A", "B")])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return out


def running_at(port: int) -> int:
    """`vllm:num_requests_running` as the token server reports it on /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return int(float(re.findall(r"^vllm:num_requests_running\{[^}]*\} (\S+)$", text, re.M)[-1]))


def most_overlapping(record: RequestRecord, others: list[RequestRecord]) -> int:
    """From the requests' own start and end times: the most other requests on the same engine that were
    streaming at one moment while `record` streamed."""
    start, end = record.at - record.timing.e2e_ms / 1000, record.at
    spans = [(r.at - r.timing.e2e_ms / 1000, r.at) for r in others if r is not record and r.slot == record.slot]
    moments = [start] + [s for s, _ in spans if start <= s <= end]
    return max(sum(1 for s, e in spans if s <= t < e) for t in moments)


def test_shared_with_counts_the_requests_really_in_flight(arena: Arena) -> None:
    before = len(arena.history)
    answers = together(arena, 3, LONG)
    assert all(a.error == "" and b.error == "" for a, b in answers)
    solo = arena.compare_once("The function returns", LONG)
    records = arena.history[before:]
    assert len(records) == 8
    for r in records:
        expected = most_overlapping(r, records)
        assert r.shared_with == expected, f"{r.slot} #{r.request_no}: recorded {r.shared_with}, in flight {expected}"
    a_together = [r.shared_with for r in records[:-2] if r.slot == "A"]
    assert a_together == [2, 2, 2], "three compares released at once share engine A"
    assert [a.shared_with for a in solo] == [0, 0], "alone afterwards"
    summary = {row.slot: row for row in arena.insights.summary()}
    assert summary["A"].shared >= 3 and summary["A"].requests >= 1, "the summary counts them apart"


def test_an_engine_that_dies_under_30_streams(arena: Arena, tmp_path: Path) -> None:
    """A is the project's token server (killed mid-stream); B is the session's real engine B, attached."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.token_server", "--step-ms", "50"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        b = arena.slot("B").engine
        assert b is not None
        specs = (
            EngineSpec(model="token-server", endpoint=f"http://127.0.0.1:{port}", api_key="k", label="dies"),
            EngineSpec(model=b.model_id, endpoint=b.base_url, api_key=b.api_key, label="lives"),
        )
        room = Arena(specs, data_dir=tmp_path, device=DEVICE, sample_interval_s=0.5)
        try:
            for name in ("A", "B"):
                assert room.start(name).state == "ready"

            def kill_when_all_stream() -> None:
                # The server's own running count, not the arena's: the arena counts a request before its
                # connection is made, and a kill then reads "not reachable" instead of "stopped mid-answer".
                deadline = time.monotonic() + 120
                while running_at(port) < 30 and time.monotonic() < deadline:
                    time.sleep(0.05)
                server.send_signal(signal.SIGKILL)

            killer = threading.Thread(target=kill_when_all_stream)
            killer.start()
            # 64 tokens at the token server's 50 ms step: A streams for 3 s, time for all 30 to start.
            answers = together(room, 30, GenerationParams(max_tokens=64, temperature=0.0, chat=False), "fair")
            killer.join(10)
            assert len(answers) == 30
            for a, b_answer in answers:
                assert a.error == "the engine stopped in the middle of the answer (connection closed)", a.error
                assert b_answer.error == "" and b_answer.text, "the other engine's answer still arrives"
            saved = room.saved.runs()
            assert len(saved) == 30, "every compare was saved, with both answers"
            assert all(run.answers[1].text and run.answers[0].error for run in saved)
        finally:
            room.shutdown()
    finally:
        if server.poll() is None:
            server.kill()
