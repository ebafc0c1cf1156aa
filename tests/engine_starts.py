"""What a test run spent on vLLM engines: the starts that Engine appends to $PLAYGROUND_ENGINE_LOG (one JSON
line each, from the test process and every app or CLI it runs), summed per test module for the run's summary;
and the state of the session's shared engines, compared after each test (tests/conftest.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from playground.measure.specs import EngineSpec


@dataclass(frozen=True)
class EngineStart:
    """One engine start as Engine recorded it: how it ended, how long it took, which test ran it."""

    outcome: str  # "ready", "failed", or "stopped before ready"
    seconds: float
    name: str
    model: str
    test: str  # PYTEST_CURRENT_TEST when it started, e.g. "tests/test_cli.py::test_compare_json (call)"
    ended_at: float = 0.0  # wall clock (time.time()) when it became ready or gave up; 0: not recorded
    forked: bool = False  # forked from a warm launcher that had imported vLLM (else it imported vLLM itself)

    @property
    def module(self) -> str:
        """The test file that caused the start (a session fixture counts for the test that first asked)."""
        return self.test.split("::", 1)[0] or "(outside any test)"


@dataclass(frozen=True)
class EngineState:
    """What must not change under a test that only uses a shared engine: its process, settings and state."""

    pid: int | None
    spec: EngineSpec
    state: str


def read_starts(path: Path) -> list[EngineStart]:
    """The starts in the log, in order; a missing file is a run that started none."""
    if not path.exists():
        return []
    starts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        starts.append(
            EngineStart(
                d["outcome"],
                float(d["seconds"]),
                d["name"],
                d["model"],
                d["test"],
                d.get("ended_at", 0.0),
                bool(d.get("forked", False)),
            )
        )
    return starts


def summary_lines(starts: list[EngineStart], most: int = 15) -> list[str]:
    """The run's engine bill: starts, failures and seconds to ready in all, then per test module, costliest first."""
    if not starts:
        return ["no vLLM engine started"]
    unready = sum(s.outcome != "ready" for s in starts)
    total = sum(s.seconds for s in starts)
    forked = sum(s.forked for s in starts)
    lines = [
        f"{len(starts)} vLLM engine starts ({unready} never ready, {forked} forked from a warm launcher), "
        f"{total:.0f} s until ready or given up"
    ]
    if all(s.ended_at for s in starts):  # starts side by side overlap: the run's wall time they covered
        lines[0] += f"; {wall_seconds(starts):.0f} s of wall time with at least one starting"
    per: dict[str, list[EngineStart]] = defaultdict(list)
    for s in starts:
        per[s.module].append(s)
    ranked = sorted(per.items(), key=lambda kv: (-sum(s.seconds for s in kv[1]), kv[0]))
    for module, group in ranked[:most]:
        lines.append(f"{len(group):4d} starts {sum(s.seconds for s in group):7.0f} s  {module}")
    if len(ranked) > most:
        rest = [s for _, group in ranked[most:] for s in group]
        more = f"({len(ranked) - most} more modules)"
        lines.append(f"{len(rest):4d} starts {sum(s.seconds for s in rest):7.0f} s  {more}")
    return lines


def wall_seconds(starts: list[EngineStart]) -> float:
    """The length of the union of the starts' spans: seconds of the run during which any engine was starting."""
    spans = sorted((s.ended_at - s.seconds, s.ended_at) for s in starts)
    total, reach = 0.0, float("-inf")
    for begin, end in spans:
        total += max(0.0, end - max(begin, reach))
        reach = max(reach, end)
    return total


def changes(before: dict[str, EngineState], after: dict[str, EngineState]) -> list[str]:
    """What differs between two snapshots of the shared engines, one phrase per difference."""
    out = []
    for name, was in before.items():
        now = after.get(name)
        if now is None:
            out.append(f"{name} is gone")
            continue
        if now.pid != was.pid:
            out.append(f"{name}'s process {was.pid} is now {now.pid}")
        if now.spec != was.spec:
            out.append(f"{name}'s settings changed")
        if now.state != was.state:
            out.append(f"{name} is {now.state}, was {was.state}")
    return out
