"""lm-eval really run against the session's two tiny engines: above chance, and every figure checked
against lm-eval's own logs (--log_samples, results_*.json) by a separate computation here."""

from __future__ import annotations

import json
import math
import random
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from playground.arena.accuracy import PAIR, AccuracyProgress
from playground.arena.core import Arena
from playground.lmeval.tasks import ASSETS, SHIPPED
from playground.measure.accuracy import AccuracyReport

pytestmark = pytest.mark.engine


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exactly."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def finish(steps: list[AccuracyProgress]) -> AccuracyReport:
    last = steps[-1]
    assert last.done and not last.error, last.error
    assert last.report is not None
    return last.report


def logged(run_dir: Path) -> list[list[dict[str, Any]]]:
    """lm-eval's own sample log of each engine, in the order they were scored."""
    out = []
    for engine_dir in sorted(run_dir.glob("engine-*")):
        (samples,) = engine_dir.rglob("samples_*.jsonl")
        out.append([json.loads(line) for line in samples.read_text().splitlines()])
    return out


def latest_run(arena: Arena) -> Path:
    return sorted((arena.data_dir / "evals" / "runs").iterdir())[-1]


@pytest.fixture(scope="module")
def shipped(arena: Arena) -> tuple[AccuracyReport, list[AccuracyProgress], Path]:
    """The shipped task's first 100 items on A and B, as the done-when asks."""
    steps = list(arena.accuracy.run(SHIPPED, limit=100, engines=PAIR))
    return finish(steps), steps, latest_run(arena)


def test_bf16_beats_chance_by_a_binomial_bound(shipped: tuple[AccuracyReport, list[AccuracyProgress], Path]) -> None:
    report, _steps, _run = shipped
    base = report.baseline
    assert len(base.items) == 100 and report.chance == pytest.approx(0.25)
    right = sum(i.correct for i in base.items)
    # Were the engine guessing, this many right answers or more would happen less than once in 10,000 runs.
    assert binomial_tail(right, 100, report.chance) < 1e-4, f"{right} of 100 right"
    assert base.accuracy - report.chance > 2 * base.stderr


def test_figures_equal_lm_eval_own_results(shipped: tuple[AccuracyReport, list[AccuracyProgress], Path]) -> None:
    report, steps, run = shipped
    for engine, engine_dir in zip(report.engines, sorted(run.glob("engine-*")), strict=True):
        (results,) = engine_dir.rglob("results_*.json")
        own = json.loads(results.read_text())["results"][SHIPPED]
        assert engine.accuracy == pytest.approx(own["acc,none"])
        assert engine.stderr == pytest.approx(own["acc_stderr,none"])
    fractions = [s.fraction for s in steps]
    assert fractions == sorted(fractions) and any("requests" in s.text for s in steps)  # lm-eval's own count
    assert all(e.seconds > 0 and e.items_per_s > 0 for e in report.engines)


def test_disagreements_recovery_and_interval_from_the_logs(
    shipped: tuple[AccuracyReport, list[AccuracyProgress], Path],
) -> None:
    report, _steps, run = shipped
    rows_a, rows_b = logged(run)

    def pick(row: dict[str, Any]) -> int:
        scores = [float(r[0]) for r in row["filtered_resps"]]
        return scores.index(max(scores))

    picks_a, picks_b = ({r["doc_id"]: pick(r) for r in rows} for rows in (rows_a, rows_b))
    expected = sorted(d for d in picks_a if picks_a[d] != picks_b[d])
    assert [d.doc_id for d in report.disagreements()] == expected
    for d in report.disagreements():
        assert d.picks == {report.engines[0].label: picks_a[d.doc_id], report.engines[1].label: picks_b[d.doc_id]}
    acc_a = sum(r["acc"] for r in rows_a) / len(rows_a)
    acc_b = sum(r["acc"] for r in rows_b) / len(rows_b)
    assert report.as_dict()["recovery"] == pytest.approx(100 * acc_b / acc_a)
    right_b = {r["doc_id"]: r["acc"] for r in rows_b}
    diffs = [right_b[r["doc_id"]] - r["acc"] for r in rows_a]
    mean = sum(diffs) / len(diffs)
    half = 1.96 * math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
    assert report.as_dict()["difference_ci95"] == pytest.approx([mean, mean - half, mean + half], abs=1e-3)


def test_saved_report_has_locked_commands_without_host_details(
    arena: Arena, shipped: tuple[AccuracyReport, list[AccuracyProgress], Path]
) -> None:
    report, _steps, _run = shipped
    saved = arena.accuracy.reports()[0]
    assert saved["engines"] == report.as_dict()["engines"]
    for label, line in saved["lm_eval_command_locked"].items():
        engine = arena.slot(label[0]).engine
        assert engine is not None and line.startswith("OPENAI_API_KEY=<engine key> lm_eval ")
        assert engine.base_url not in line and engine.api_key not in line and str(arena.data_dir) not in line
    assert all(engine.base_url in saved["lm_eval_command"][label] for label, engine in
               ((k, arena.slot(k[0]).engine) for k in saved["lm_eval_command"]) if engine)  # fmt: skip


def test_near_ties_from_a_users_jsonl_with_fewshot(arena: Arena, tmp_path: Path) -> None:
    """A user's JSONL of near-tied pairs (the true ending against the same ending with its last word
    changed), two few-shot examples: the disagreements again equal lm-eval's per-item logs."""
    rng = random.Random(7)
    shipped_items = [json.loads(line) for line in (ASSETS / f"{SHIPPED}.jsonl").read_text().splitlines()]
    swaps = ["object", "value", "file", "string", "list", "name", "number", "result", "module", "function"]
    lines = []
    for item in shipped_items[:60]:
        gold = item["choices"][item["answer"]]
        near = " ".join([*gold.split()[:-1], rng.choice([w for w in swaps if w != gold.split()[-1]])])
        choices = [gold, near]
        rng.shuffle(choices)
        lines.append(json.dumps({"question": item["question"], "choices": choices, "answer": choices.index(gold)}))
    path = tmp_path / "near ties.jsonl"  # a space in the name: the task name is made safe, the path quoted
    path.write_text("\n".join(lines) + "\n")
    report = finish(list(arena.accuracy.run(str(path), fewshot=2)))
    assert report.task == "near_ties" and report.chance == pytest.approx(0.5) and report.fewshot == 2
    rows_a, rows_b = logged(latest_run(arena))
    assert len(rows_a) == len(rows_b) == 60
    assert rows_a[0]["arguments"]["gen_args_0"]["arg_0"].count("\n\n") == 2  # two examples before the question
    # With two choices the engines pick differently exactly when one of them is right and the other not.
    right_b = {r["doc_id"]: r["acc"] for r in rows_b}
    flipped = sorted(r["doc_id"] for r in rows_a if r["acc"] != right_b[r["doc_id"]])
    assert [d.doc_id for d in report.disagreements()] == flipped
    print(f"near ties: {len(flipped)} of 60 items flipped between the engines")


def lm_eval_children() -> set[int]:
    """PIDs of this process's descendants that run lm_eval (one may end while it is read)."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "lm_eval" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


def test_cancel_stops_lm_eval_and_saves_nothing(arena: Arena) -> None:
    """Cancel once lm-eval reports requests: its whole process tree ends, the run says so, no report is added."""
    evaluator = arena.accuracy
    before = len(evaluator.reports())
    stop = threading.Event()
    children_seen: set[int] = set()
    steps = []
    for step in evaluator.run(SHIPPED, limit=100, engines=PAIR, cancel=stop):
        steps.append(step)
        children_seen |= lm_eval_children()
        if step.requests[0] > 0:
            stop.set()
    assert steps[-1].done and steps[-1].report is None
    assert steps[-1].error == "the evaluation was cancelled; nothing was saved"
    assert children_seen, "lm-eval ran as a child process"
    assert not [p for p in children_seen if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert len(evaluator.reports()) == before
