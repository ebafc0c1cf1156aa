"""The run's engine bill and the shared-engine check, on hand-made records (tests/engine_starts.py); the
records Engine itself writes are checked where engines start (tests/arena/test_arena.py, tests/test_cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

from playground.measure.specs import EngineSpec
from tests.engine_starts import EngineStart, EngineState, changes, read_starts, summary_lines, wall_seconds


def start(test: str, seconds: float, outcome: str = "ready") -> EngineStart:
    return EngineStart(outcome, seconds, "A", "tiny/bf16", test)


def test_no_log_is_no_start(tmp_path: Path) -> None:
    assert read_starts(tmp_path / "missing.jsonl") == []
    assert summary_lines([]) == ["no vLLM engine started"]


def test_lines_are_read_as_written(tmp_path: Path) -> None:
    log = tmp_path / "starts.jsonl"
    line = {"outcome": "ready", "seconds": 41.5, "name": "B", "model": "m", "quantization": "awq", "process": 7}
    rows = [{**line, "test": "tests/a.py::t (setup)"}, {**line, "test": ""}]
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    rows.append({**line, "test": "tests/a.py::t (call)", "forked": True})
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    first, second, third = read_starts(log)
    assert first == EngineStart("ready", 41.5, "B", "m", "tests/a.py::t (setup)") and first.module == "tests/a.py"
    assert second.module == "(outside any test)"
    assert not first.forked and third.forked


def test_summary_totals_and_ranks_modules_by_seconds() -> None:
    starts = [
        start("tests/a.py::t1 (setup)", 40),
        EngineStart("ready", 30, "A", "tiny/bf16", "tests/a.py::t2 (call)", forked=True),
        start("tests/b.py::t (call)", 100),
        start("tests/c.py::t (call)", 5, "failed"),
    ]
    assert summary_lines(starts) == [
        "4 vLLM engine starts (1 never ready, 1 forked from a warm launcher), 175 s until ready or given up",
        "   1 starts     100 s  tests/b.py",
        "   2 starts      70 s  tests/a.py",
        "   1 starts       5 s  tests/c.py",
    ]


def test_summary_folds_the_cheapest_modules_into_one_line() -> None:
    starts = [start(f"tests/m{i}.py::t (call)", 10 * i) for i in range(1, 5)]
    assert summary_lines(starts, most=2)[1:] == [
        "   1 starts      40 s  tests/m4.py",
        "   1 starts      30 s  tests/m3.py",
        "   2 starts      30 s  (2 more modules)",
    ]


def test_starts_side_by_side_count_their_wall_time_once() -> None:
    pair = [EngineStart("ready", 40, n, "m", "tests/a.py::t (setup)", 1000.0 + d) for n, d in (("A", 0), ("B", 5))]
    alone = EngineStart("failed", 10, "A", "m", "tests/b.py::t (call)", 2000.0)
    assert wall_seconds(pair) == 45 and wall_seconds([*pair, alone]) == 55
    assert summary_lines([*pair, alone])[0] == (
        "3 vLLM engine starts (1 never ready, 0 forked from a warm launcher), 90 s until ready or given up;"
        " 55 s of wall time with at least one starting"
    )
    assert "wall time" not in summary_lines([start("tests/a.py::t (call)", 3)])[0], "older lines carry no clock"


def test_changes_name_each_difference() -> None:
    bf16, awq, gptq = (EngineSpec(model=f"tiny/{m}") for m in ("bf16", "awq", "gptq"))
    before = {"A": EngineState(10, bf16, "ready"), "B": EngineState(20, awq, "ready")}
    assert changes(before, dict(before)) == []
    after = {"A": EngineState(11, bf16, "ready"), "B": EngineState(20, gptq, "failed")}
    assert changes(before, after) == ["A's process 10 is now 11", "B's settings changed", "B is failed, was ready"]
    assert changes(before, {"A": before["A"]}) == ["B is gone"]
