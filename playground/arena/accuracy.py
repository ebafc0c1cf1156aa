"""Accuracy with lm-eval on the engines that already run: A and B, or every ladder variant in turn. A
part the `Arena` holds (`arena.accuracy`), given the data folder, the slots and their status, the
variants (which swap a ladder variant in for its turn) and the ladder whose baseline goes first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.arena.ladder import Ladder
from playground.arena.slot import Slot
from playground.arena.variants import Variants
from playground.engines.server import EngineError
from playground.lmeval.runner import CANCELLED, EvalError, EvalSettings, EvalTarget, run_lm_eval
from playground.lmeval.tasks import TaskError, resolve_task
from playground.measure.accuracy import AccuracyReport, EngineAccuracy, chance_level
from playground.measure.records import EngineStatus
from playground.measure.specs import SpecError
from playground.store.evals import EvalStore

PAIR = "A and B"
LADDER = "every ladder variant"


@dataclass(frozen=True)
class AccuracyProgress:
    """Where an evaluation stands: a line for the user, the fraction done, and the report once done."""

    text: str
    fraction: float
    report: AccuracyReport | None = None
    done: bool = False
    error: str = ""
    scored: tuple[EngineAccuracy, ...] = field(default=())
    engine: str = ""  # the engine being scored
    requests: tuple[int, int] = (0, 0)  # lm-eval's own count for it: (done, total)


def check_request(task: str, limit: int | None, fewshot: int) -> list[str]:
    """What is wrong with the request before anything runs, one sentence each."""
    problems = []
    if not task.strip():
        problems.append("choose a task: the shipped stdlib_docstrings, an lm-eval task name, or a .yaml/.jsonl file")
    if limit is not None and limit < 1:
        problems.append(f"--limit must be at least 1 item (got {limit}); leave it out for the whole task")
    if fewshot < 0:
        problems.append(f"few-shot must be 0 or more examples (got {fewshot})")
    return problems


class Evaluator:
    """Runs lm-eval against the arena's engines (A and B at once, ladder variants in turn) and keeps every
    finished report."""

    def __init__(
        self,
        data_dir: Path,
        slots: dict[str, Slot],
        status: Callable[[str], EngineStatus],
        variants: Variants,
        ladder: Ladder,
    ):
        self.data_dir = data_dir
        self.slots = slots
        self._status = status
        self.variants = variants
        self.ladder = ladder
        self.store = EvalStore(data_dir / "evals")
        self._running = threading.Lock()

    def run(
        self,
        task: str,
        *,
        limit: int | None = None,
        fewshot: int = 0,
        engines: str = PAIR,
        cancel: threading.Event | None = None,
    ) -> Iterator[AccuracyProgress]:
        """Score the engines (A and B at once); yields progress, the last one done with the report or an error.

        A report is saved only when every engine was scored, so a failure leaves nothing half-written."""
        if problems := check_request(task, limit, fewshot):
            raise SpecError("; ".join(problems))
        if not self._running.acquire(blocking=False):
            raise SpecError("an evaluation is already running; wait for it or cancel it")
        try:
            yield from self._run(task, limit, fewshot, engines, cancel or threading.Event())
        finally:
            self._running.release()

    def _run(
        self, task: str, limit: int | None, fewshot: int, engines: str, cancel: threading.Event
    ) -> Iterator[AccuracyProgress]:
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}"  # two runs in one second differ
        workdir = self.data_dir / "evals" / "runs" / stamp
        try:
            settings = EvalSettings(resolve_task(task, workdir), limit, fewshot)
        except TaskError as exc:
            yield AccuracyProgress(str(exc), 0.0, done=True, error=str(exc))
            return
        plan = self._plan(engines)
        # A and B already run side by side, so they are scored at once; ladder variants take turns in B.
        rounds = [plan] if engines == PAIR else [[step] for step in plan]
        scored: list[EngineAccuracy] = []
        for group in rounds:
            error = yield from self._round(group, len(plan), settings, workdir, scored, cancel)
            if error:
                yield AccuracyProgress(error, len(scored) / len(plan), done=True, error=error, scored=tuple(scored))
                return
        items = scored[0].items
        report = AccuracyReport(settings.task.name, limit, fewshot, tuple(scored), chance_level(items))
        self.save(report)
        text = f"{len(scored)} engines scored on {settings.task.name}"
        yield AccuracyProgress(text, 1.0, report, done=True, scored=tuple(scored))

    def _round(
        self,
        group: list[tuple[str, str]],
        engines: int,
        settings: EvalSettings,
        workdir: Path,
        scored: list[EngineAccuracy],
        cancel: threading.Event,
    ) -> Generator[AccuracyProgress, None, str]:
        """Score the (pane, label) pairs of `group` at once, appending to `scored`; returns an error or ""."""
        stop = threading.Event()  # the user's cancel, or another engine of the round failing
        labels = [label for _, label in group]
        progress: list[list[tuple[int, int]]] = [[] for _ in group]
        first = len(scored)
        jobs: list[Future[EngineAccuracy]] = []
        with ThreadPoolExecutor(max_workers=len(group), thread_name_prefix="lm-eval") as pool:
            for n, (pane, label) in enumerate(group):
                yield AccuracyProgress(f"{label}: getting the engine ready", first / engines, scored=tuple(scored))
                try:
                    target = self._target(pane, label)
                except (EngineError, SpecError) as exc:
                    stop.set()
                    return self._explain(pane, label, exc)
                out = workdir / f"engine-{first + n}"
                record = _recorder(progress[n])
                jobs.append(pool.submit(run_lm_eval, target, settings, out, on_progress=record, cancel=stop))
            try:
                while not all(job.done() for job in jobs):
                    # Once stopping, wait for the others to end (FIRST_EXCEPTION would return at once).
                    wait(jobs, timeout=0.5, return_when=ALL_COMPLETED if stop.is_set() else FIRST_EXCEPTION)
                    if cancel.is_set() or any(job.done() and job.exception() for job in jobs):
                        stop.set()
                    for n in range(len(jobs)):
                        yield _step(labels, progress, n, first, engines, scored)
            finally:  # the consumer went away or an interrupt: lm-eval runs in its own process group
                if not all(job.done() for job in jobs):
                    stop.set()
        failures = [
            (pane, label, error) for (pane, label), job in zip(group, jobs, strict=True) if (error := job.exception())
        ]
        if failures:  # the engine that failed, not the others of its round that it stopped
            pane, label, error = next((f for f in failures if str(f[2]) != CANCELLED), failures[0])
            if not isinstance(error, (EvalError, EngineError, SpecError)):
                raise error  # a bug, not a failed evaluation
            return self._explain(pane, label, error)
        scored.extend(job.result() for job in jobs)
        return ""

    def save(self, report: AccuracyReport) -> dict[str, Any]:
        """Save a finished report with both forms of its lm_eval lines; the saved JSON."""
        data = {**report.as_dict(), "lm_eval_command_locked": report.as_dict(locked=True)["lm_eval_command"]}
        self.store.save(data)
        return data

    def _plan(self, engines: str) -> list[tuple[str, str]]:
        """(pane, label) for each engine to score: A and B, or the ladder's variants (baseline first, in A)."""
        if engines == PAIR:
            return [(name, self.slots[name].label) for name in ("A", "B")]
        variants = list(self.variants.specs)
        if len(variants) < 2:
            raise SpecError("the ladder has fewer than two variants; add some in the Ladder tab first")
        base = self.ladder.baseline or variants[0]
        return [("A", base)] + [("B", v) for v in variants if v != base]

    def _target(self, pane: str, label: str) -> EvalTarget:
        """The engine for `label` in `pane`, woken or swapped in first when it is a ladder variant."""
        if label in self.variants.specs and self.slots[pane].spec.display_name != label:
            self.variants.show(pane, label)  # wakes a sleeping variant, or restarts the pane on it
        slot = self.slots[pane]
        status = self._status(pane)
        if slot.engine is None or status.state != "ready":
            raise EngineError(f"engine {pane} is not ready ({status.message or status.phase})")
        return EvalTarget(label, slot.engine.base_url, slot.engine.api_key, slot.engine.model_id)

    def _explain(self, pane: str, label: str, exc: BaseException) -> str:
        """The error, or that the engine died when lm-eval only saw its connection fail."""
        state = self._status(pane).state
        if isinstance(exc, EvalError) and state in ("failed", "stopped"):
            return f"engine {label} stopped during the evaluation; nothing was saved"
        return f"{exc}; nothing was saved"

    def reports(self, limit: int = 50) -> list[dict[str, Any]]:
        """The saved reports, newest first."""
        return self.store.reports(limit)


def _recorder(seen: list[tuple[int, int]]) -> Callable[[int, int], None]:
    """A progress callback that appends lm-eval's (done, total) to `seen` (read by the generator's thread)."""
    return lambda done, total: seen.append((done, total))


def _step(
    labels: list[str],
    progress: list[list[tuple[int, int]]],
    n: int,
    first: int,
    engines: int,
    scored: list[EngineAccuracy],
) -> AccuracyProgress:
    """lm-eval's own request counts, (done, total) as it reported them, for the engines being scored, as
    one progress line about engine `n` of the round; `first` engines of `engines` were scored before it."""
    parts, fraction = [], first / engines
    for label, seen in zip(labels, progress, strict=True):
        done, total = seen[-1] if seen else (0, 0)
        parts.append(f"{label}: {done} of {total} requests" if total else f"{label}: lm-eval is starting")
        fraction += (done / total if total else 0.0) / engines
    done, total = progress[n][-1] if progress[n] else (0, 0)
    return AccuracyProgress(" · ".join(parts), fraction, scored=tuple(scored), engine=labels[n], requests=(done, total))


def engine_labels(reports: Sequence[dict[str, Any]]) -> list[str]:
    """Every engine label that appears in the reports, in first-seen order."""
    return list(dict.fromkeys(e["label"] for r in reports for e in r.get("engines", [])))
