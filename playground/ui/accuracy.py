"""The Gradio "Accuracy" tab: lm-eval on the running engines, accuracy ± stderr, recovery, disagreements."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from playground.arena.accuracy import LADDER, PAIR, Evaluator
from playground.arena.core import Arena
from playground.arena.defaults import ASSETS
from playground.lmeval.tasks import SHIPPED
from playground.measure.specs import SpecError
from playground.views.accuracy import (
    RESULT_COLUMNS,
    commands_markdown,
    disagreement_columns,
    disagreement_rows,
    result_rows,
    summary_line,
)

# Multiple-choice tasks lm-eval scores by log-likelihood; the named ones need their dataset from the Hub.
TASK_CHOICES = [SHIPPED, "arc_easy", "arc_challenge", "hellaswag", "piqa", "winogrande", "mmlu_abstract_algebra"]
CANCEL_WAIT_S = 60.0


@dataclass
class _Runs:
    """The evaluations this tab has running, shared by its Run and Cancel events."""

    stops: list[threading.Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def accuracy_tab(arena: Arena, locked: bool) -> None:
    """Add the Accuracy tab's inputs (open instances), results and events to the Blocks being built."""
    evaluator = arena.accuracy
    gr.Markdown((ASSETS / "accuracy.md").read_text())
    if not locked:  # an evaluation loads the engines for minutes: the operator's tool, like the sweep
        with gr.Row():
            label = "Task: a name, or the path of your .yaml / .jsonl (question, choices, answer)"
            task = gr.Dropdown(TASK_CHOICES, value=SHIPPED, allow_custom_value=True, scale=3, label=label)
            limit = gr.Number(100, label="Items (0 or empty: all)", precision=0, minimum=0)
            fewshot = gr.Number(0, label="Few-shot examples", precision=0, minimum=0)
            engines = gr.Radio([PAIR, LADDER], value=PAIR, label="Engines")
        with gr.Row():
            run = gr.Button("Evaluate ▶", variant="primary")
            cancel = gr.Button("Cancel", variant="stop")
    else:
        show = gr.Button("Show the latest results")
    message = gr.Markdown()
    table = gr.Dataframe(headers=RESULT_COLUMNS, value=[], interactive=False, wrap=True, label="Accuracy per engine")
    disagree = gr.Dataframe(value=[], interactive=False, wrap=True, label="Items where the engines disagree")
    commands = gr.Markdown()
    outputs = [message, table, disagree, commands]
    if locked:
        show.click(lambda: _latest(evaluator, True), None, outputs, api_name="accuracy_latest")
        return
    runs = _Runs()
    # No queue limit: a second click hears "already running" at once (the evaluator runs one at a time).
    run.click(_run_handler(evaluator, runs), [task, limit, fewshot, engines], outputs, api_name="accuracy",
              concurrency_limit=None)  # fmt: skip
    # Cancel stops lm-eval itself (its whole process tree); the run then ends with "cancelled", nothing saved.
    cancel.click(_cancel_handler(runs), None, [message], api_name="cancel_accuracy")


def _render(report: dict[str, Any] | None, note: str, *, locked: bool) -> tuple[Any, ...]:
    if report is None:
        return note, [], {"headers": ["item"], "data": []}, ""
    lines = [note] if note else []
    lines.append(summary_line(report))
    disagree = {"headers": disagreement_columns(report), "data": disagreement_rows(report)}
    return "\n\n".join(lines), result_rows(report), disagree, commands_markdown(report, locked=locked)


def _latest(evaluator: Evaluator, locked: bool) -> tuple[Any, ...]:
    saved = evaluator.reports()
    if not saved:
        return _render(None, "No evaluation has been run on this instance yet.", locked=locked)
    return _render(saved[0], "The operator's latest evaluation:", locked=locked)


def _run_handler(evaluator: Evaluator, runs: _Runs):  # type: ignore[no-untyped-def]
    def evaluate(
        task: str,
        limit: float | None,
        fewshot: float | None,
        engines: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's way to ask for a progress bar
    ) -> tuple[Any, ...]:
        stop = threading.Event()
        with runs.lock:
            runs.stops.append(stop)
        try:
            last = None
            items = None if not limit else int(limit)
            for step in evaluator.run(task or "", limit=items, fewshot=int(fewshot or 0), engines=engines, cancel=stop):
                progress(step.fraction, desc=step.text)
                last = step
        except SpecError as exc:
            return _render(None, f"✕ {exc}", locked=False)
        finally:
            with runs.lock:
                runs.stops.remove(stop)
        if last is None or last.report is None:
            return _render(None, f"✕ {last.error if last else 'nothing ran'}", locked=False)
        return _render(last.report.as_dict(), "", locked=False)

    return evaluate


def _cancel_handler(runs: _Runs):  # type: ignore[no-untyped-def]
    def cancel() -> str:
        with runs.lock:
            stops = list(runs.stops)
        if not stops:
            return "No evaluation is running."
        for stop in stops:
            stop.set()
        return "Cancelling: lm-eval is stopped; nothing is saved."

    return cancel
