"""Bad inputs to an evaluation, through the core and lm-eval really run: one sentence each, no report saved.

docs/bad-inputs.md, "Accuracy", lists these rows. Malformed YAML/JSONL and --limit 0 are refused
before lm-eval starts (tests/lmeval/test_tasks.py covers their sentences); here the same reach the core."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from playground.arena.accuracy import PAIR, AccuracyProgress
from playground.arena.core import Arena
from playground.lmeval.tasks import SHIPPED
from playground.measure.specs import SpecError
from tests.conftest import DEVICE, SPEC_A

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.engine


def last_error(steps: list[AccuracyProgress]) -> str:
    assert steps[-1].done and steps[-1].report is None
    return steps[-1].error


def one_sentence(text: str) -> bool:
    return bool(text) and "\n" not in text and "Traceback" not in text


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("no_such_task_xyz", "lm-eval has no task called 'no_such_task_xyz'"),
        ("arc_easy", "the dataset of task 'arc_easy' cannot be reached from this machine"),
    ],
)
def test_unknown_task_and_unreachable_dataset(arena: Arena, task: str, expected: str) -> None:
    evaluator = arena.accuracy
    before = len(evaluator.reports())
    error = last_error(list(evaluator.run(task, limit=5, engines=PAIR)))
    assert error.startswith(expected) and one_sentence(error), error
    assert len(evaluator.reports()) == before


def test_malformed_files_and_limit_zero_reach_the_core(arena: Arena, tmp_path: Path) -> None:
    evaluator = arena.accuracy
    before = len(evaluator.reports())
    (tmp_path / "bad.jsonl").write_text('{"question": "q", "choices": ["a"], "answer": 0}\n')
    (tmp_path / "bad.yaml").write_text("task: [unclosed\n")
    for path, expected in ((tmp_path / "bad.jsonl", "needs choices"), (tmp_path / "bad.yaml", "is not valid YAML")):
        error = last_error(list(evaluator.run(str(path))))
        assert expected in error and one_sentence(error)
    with pytest.raises(SpecError, match="--limit must be at least 1 item"):
        next(evaluator.run(SHIPPED, limit=0))
    assert len(evaluator.reports()) == before


def test_cli_limit_zero_is_one_line_and_starts_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "playground", "eval", "--task", SHIPPED, "--limit", "0", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "error: --limit must be at least 1 item (got 0); leave it out for the whole task"


def test_engine_that_dies_mid_run(arena: Arena, tmp_path: Path) -> None:
    """A is the session's engine A (attached); B is a fresh tiny engine, killed once lm-eval has sent it requests."""
    engine_a = arena.slot("A").engine
    assert engine_a is not None
    attached = replace(SPEC_A, endpoint=engine_a.base_url, api_key=engine_a.api_key, served_name=engine_a.model_id)
    own = Arena((attached, replace(SPEC_A, label="doomed")), data_dir=tmp_path, device=DEVICE, sample_interval_s=5)
    try:
        started = own.start_all()
        assert not any(isinstance(s, str) for s in started.values()), started
        evaluator = own.accuracy
        steps = []
        for step in evaluator.run(SHIPPED, limit=100, engines=PAIR):
            steps.append(step)
            victim = own.slot("B").engine
            if victim is not None and step.engine == own.slot("B").label and step.requests[0] > 0:
                if victim.returncode() is None:
                    os.killpg(victim.pids()[0], signal.SIGKILL)  # the engine dies, as on an out-of-memory kill
        error = last_error(steps)
        assert error == "engine B: doomed stopped during the evaluation; nothing was saved", error
        assert evaluator.reports() == []
    finally:
        own.shutdown()
