"""Accuracy on a multiple-choice task, from lm-eval's per-item sample logs: scores, recovery, paired interval (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Z95 = 1.959963984540054  # the normal distribution's two-sided 95 % point


@dataclass(frozen=True)
class ItemResult:
    """One item as one engine answered it: the prompt, the choices, the gold index and the engine's pick."""

    doc_id: int
    prompt: str
    choices: tuple[str, ...]
    gold: int
    pick: int

    @property
    def correct(self) -> bool:
        """True when the engine picked the gold choice."""
        return self.pick == self.gold


@dataclass(frozen=True)
class EngineAccuracy:
    """One engine's score on the task: accuracy, its standard error, and the speed it took."""

    label: str
    items: tuple[ItemResult, ...]
    seconds: float
    command: str = ""  # the lm_eval command line that produced it
    locked_command: str = ""  # the same with placeholders for the host, port and paths (locked instances)

    @property
    def accuracy(self) -> float:
        """Share of items whose gold choice had the highest log-likelihood."""
        return mean_and_stderr([i.correct for i in self.items])[0]

    @property
    def stderr(self) -> float:
        """Standard error of the accuracy (sample standard deviation over sqrt(n), as lm-eval reports it)."""
        return mean_and_stderr([i.correct for i in self.items])[1]

    @property
    def items_per_s(self) -> float:
        """Items scored per second of the lm_eval run (requests, tokenization and start-up included)."""
        return len(self.items) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Disagreement:
    """An item where the engines picked differently: the teaching moment."""

    doc_id: int
    prompt: str
    choices: tuple[str, ...]
    gold: int
    picks: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AccuracyReport:
    """The whole comparison: every engine's score against the first (the baseline)."""

    task: str
    limit: int | None
    fewshot: int
    engines: tuple[EngineAccuracy, ...]
    chance: float

    @property
    def baseline(self) -> EngineAccuracy:
        """The engine the others are compared with (A, or the ladder's baseline)."""
        return self.engines[0]

    def recovery(self) -> dict[str, float | None]:
        """Each other engine's accuracy as a percentage of the baseline's."""
        base = self.baseline.accuracy
        return {e.label: recovery(base, e.accuracy) for e in self.engines[1:]}

    def difference_ci95(self) -> dict[str, tuple[float, float, float]]:
        """Each other engine's paired difference from the baseline: (difference, low, high)."""
        return {e.label: paired_difference_ci95(self.baseline.items, e.items) for e in self.engines[1:]}

    def disagreements(self) -> list[Disagreement]:
        """Items where not every engine picked the same choice, in document order."""
        return disagreements(self.engines)

    def as_dict(self, *, locked: bool = False) -> dict[str, Any]:
        """The CLI's and the export's JSON; `locked`: the lm_eval lines carry placeholders, not host details."""
        only = len(self.engines) == 2
        rec, ci = self.recovery(), self.difference_ci95()
        return {
            "task": self.task,
            "limit": self.limit,
            "fewshot": self.fewshot,
            "chance": self.chance,
            "engines": [
                {
                    "label": e.label,
                    "accuracy": e.accuracy,
                    "stderr": e.stderr,
                    "items": len(e.items),
                    "seconds": e.seconds,
                    "items_per_s": e.items_per_s,
                }
                for e in self.engines
            ],
            # With a pair, one figure each (the JSON); with a ladder, one per variant.
            "recovery": next(iter(rec.values())) if only else rec,
            "difference_ci95": list(next(iter(ci.values()))) if only else {k: list(v) for k, v in ci.items()},
            "disagreements": [
                {"doc_id": d.doc_id, "prompt": d.prompt, "choices": list(d.choices), "gold": d.gold, "picks": d.picks}
                for d in self.disagreements()
            ],
            "lm_eval_command": {e.label: e.locked_command if locked else e.command for e in self.engines},
        }


def mean_and_stderr(values: Sequence[bool | float]) -> tuple[float, float]:
    """Mean and standard error (sample standard deviation / sqrt(n)); (0, 0) when empty, stderr 0 for one value."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0
    mean = sum(float(v) for v in values) / n
    if n == 1:
        return mean, 0.0
    var = sum((float(v) - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def recovery(baseline: float, other: float) -> float | None:
    """The other score as a percentage of the baseline's; None when the baseline scored 0."""
    return 100.0 * other / baseline if baseline > 0 else None


def paired_difference_ci95(base: Sequence[ItemResult], other: Sequence[ItemResult]) -> tuple[float, float, float]:
    """Mean of (other correct - baseline correct) over the items both answered, with its 95 % interval."""
    right = {i.doc_id: i.correct for i in other}
    diffs = [float(right[i.doc_id]) - float(i.correct) for i in base if i.doc_id in right]
    mean, se = mean_and_stderr(diffs)
    return mean, mean - Z95 * se, mean + Z95 * se


def disagreements(engines: Sequence[EngineAccuracy]) -> list[Disagreement]:
    """Items that every engine answered and on which their picks differ."""
    if len(engines) < 2:
        return []
    by_engine = [{i.doc_id: i for i in e.items} for e in engines]
    common = sorted(set.intersection(*(set(d) for d in by_engine)))
    out = []
    for doc_id in common:
        picks = {e.label: d[doc_id].pick for e, d in zip(engines, by_engine, strict=True)}
        if len(set(picks.values())) > 1:
            first = by_engine[0][doc_id]
            out.append(Disagreement(doc_id, first.prompt, first.choices, first.gold, picks))
    return out


def chance_level(items: Sequence[ItemResult]) -> float:
    """The accuracy of picking uniformly at random: the mean of 1 / number of choices."""
    return sum(1 / len(i.choices) for i in items) / len(items) if items else 0.0


def item_from_sample(row: dict[str, Any]) -> ItemResult:
    """One line of lm-eval's --log_samples file for a multiple_choice task as an ItemResult."""
    args = row["arguments"]
    pairs = list(args.values()) if isinstance(args, dict) else args  # {"gen_args_0": {"arg_0", "arg_1"}} or lists
    contexts = [str(a["arg_0"] if isinstance(a, dict) else a[0]) for a in pairs]
    choices = tuple(str(a["arg_1"] if isinstance(a, dict) else a[1]).strip() for a in pairs)
    scores = [float(r[0]) for r in row["filtered_resps"]]
    pick = max(range(len(scores)), key=scores.__getitem__)  # lm-eval's own argmax: the first of equal maxima
    target = row["target"]
    target = target[0] if isinstance(target, list) else target
    text = str(target).strip()
    gold = int(text) if text.lstrip("-").isdigit() else choices.index(text)
    return ItemResult(int(row["doc_id"]), contexts[0], choices, gold, pick)


_PROGRESS = re.compile(r"Requesting API:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)")


def request_progress(text: str) -> tuple[int, int] | None:
    """The last `done/total` of lm-eval's own 'Requesting API' progress bar in a chunk of its stderr."""
    found = _PROGRESS.findall(text)
    return (int(found[-1][0]), int(found[-1][1])) if found else None
