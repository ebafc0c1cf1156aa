"""The Gradio "Ladder" tab: the session's variants of one model, any of them swapped into a pane, and
the ladder table and chart that measure them all the same way."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from playground.arena.core import Arena
from playground.arena.defaults import ASSETS
from playground.engines.server import EngineError
from playground.measure.ladder import COLUMNS, LEGEND, best_tradeoffs, table_rows
from playground.measure.specs import SpecError, parse_spec
from playground.views.accuracy import accuracy_by_variant, accuracy_tasks
from playground.views.charts import ladder_figure

VARIANT_COLUMNS = ["variant", "model", "quantization", "where", "last swap into a pane"]
SWAP_WORDS = {
    "sleep": "**This device swaps by vLLM's sleep mode:** the panes' variants are awake, the others sleep "
    "with their weights in host RAM; a sleeping variant wakes in about a second.",
    "restart": "**This device swaps by restart:** vLLM's CPU build has no sleep mode, so showing another "
    "variant stops the pane's engine and starts the new one (tens of seconds here). The time it took is "
    "shown below and on the engine card.",
}


def variant_rows(arena: Arena) -> list[list[object]]:
    """One row per variant: where it is now and its last swap."""
    swaps = {rec.label: rec for rec in arena.variants.swaps.values()}
    rows: list[list[object]] = []
    for label, spec in arena.variants.specs.items():
        rec = swaps.get(label)
        how = "" if rec is None else f"{rec.seconds:.1f} s ({'woke' if rec.woke else rec.method})"
        rows.append([label, spec.model, spec.quantization, arena.variants.state(label), how])
    return rows


def ladder_tab(arena: Arena) -> None:
    """Add the variants, the swap controls and the ladder to the Blocks being built."""
    evaluator = arena.accuracy
    gr.Markdown((ASSETS / "ladder.md").read_text() + "\n\n" + SWAP_WORDS[arena.variants.swap_method])
    variants = gr.Dataframe(headers=VARIANT_COLUMNS, value=variant_rows(arena), interactive=False)
    labels = list(arena.variants.specs)
    with gr.Row():
        new_spec = gr.Textbox(
            label="Add a variant: MODEL[,key=value...]",
            placeholder="tiny/gptq,quantization=gptq,label=tiny GPTQ",
            scale=3,
        )
        add = gr.Button("Add variant", scale=1)
    with gr.Row():
        pane = gr.Radio(["A", "B"], value="B", label="Pane", scale=1)
        pick = gr.Dropdown(labels, value=labels[-1], label="Variant to show", scale=2)
        show = gr.Button("Show in pane ▶", scale=1)
    swap_message = gr.Markdown()
    with gr.Row():
        baseline = gr.Dropdown(labels, value=labels[0], label="Baseline (the others are held against it)", scale=2)
        run = gr.Button("Run ladder ▶", variant="primary", scale=1)
        cancel = gr.Button("Cancel", variant="stop", scale=1)
    ladder_message = gr.Markdown()
    with gr.Row():
        tasks = accuracy_tasks(evaluator.reports())
        acc_task = gr.Dropdown(tasks, value=tasks[0] if tasks else None, allow_custom_value=True, scale=2,
                               label="Accuracy column: task (run it on every variant in the Accuracy tab)")  # fmt: skip
        acc_show = gr.Button("Show accuracy", scale=1)
    # The variant stays pinned while the figures scroll sideways on a narrow window.
    table = gr.Dataframe(headers=COLUMNS, value=[], interactive=False, wrap=False, pinned_columns=1)
    gr.Markdown(LEGEND)
    plot = gr.Plot(ladder_figure([], []), label="Memory against quality loss")
    stop = threading.Event()

    def accuracy_column(task: str | None) -> dict[str, str]:
        return accuracy_by_variant(evaluator.reports(), task or "")

    def choices() -> tuple[Any, Any]:
        names = list(arena.variants.specs)
        return gr.update(choices=names), gr.update(choices=names)

    def add_variant(text: str) -> tuple[Any, ...]:
        try:
            label = arena.variants.add(parse_spec(text or ""))
        except SpecError as exc:
            return (variant_rows(arena), *choices(), f"✕ {exc}")
        return (variant_rows(arena), *choices(), f"Added **{label}**: show it in a pane or run the ladder.")

    def show_variant(name: str, label: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        progress(0, desc=f"bringing {label} into pane {name}")
        try:
            rec = arena.variants.show(name, label)
        except (SpecError, EngineError) as exc:
            return variant_rows(arena), f"✕ {exc}"
        how = (
            "woke from sleep"
            if rec.woke
            else ("started, the old one put to sleep" if rec.method == "sleep" else "restart")
        )
        return variant_rows(arena), f"Pane {name} shows **{label}**: swapped in {rec.seconds:.1f} s ({how})."

    def run_ladder(
        base: str,
        task: str | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's way to ask for a progress bar
    ) -> Iterator[tuple[Any, ...]]:
        stop.clear()
        text = (ASSETS / "reference.txt").read_text()
        started = time.monotonic()
        try:
            for step in arena.ladder.run(base, text=text, cancel=stop):
                progress(step.fraction, desc=step.message)
                best = best_tradeoffs(step.rows)
                note = step.message if not step.done else _verdict(step.rows, best, time.monotonic() - started)
                rows = table_rows(step.rows, base, accuracy_column(task))
                yield note, rows, ladder_figure(step.rows, best), variant_rows(arena)
        except SpecError as exc:
            rows = table_rows(arena.ladder.rows, base, accuracy_column(task))
            yield f"✕ {exc}", rows, gr.update(), variant_rows(arena)

    def cancel_ladder() -> str:
        stop.set()
        return "Cancelling: the ladder stops after the variant being measured."

    add.click(add_variant, [new_spec], [variants, pick, baseline, swap_message], api_name="add_variant")
    show.click(show_variant, [pane, pick], [variants, swap_message], api_name="show_variant")
    run.click(run_ladder, [baseline, acc_task], [ladder_message, table, plot, variants], api_name="ladder")

    def show_accuracy(task: str | None) -> tuple[Any, Any]:
        rows = table_rows(arena.ladder.rows, arena.ladder.baseline, accuracy_column(task))
        return rows, gr.update(choices=accuracy_tasks(evaluator.reports()))

    acc_show.click(show_accuracy, [acc_task], [table, acc_task], api_name="ladder_accuracy")
    cancel.click(cancel_ladder, None, [ladder_message], api_name="cancel_ladder")


def _verdict(rows: list[Any], best: list[str], seconds: float) -> str:
    failed = [r for r in rows if r.error]
    lines = [f"**{len(rows) - len(failed)} of {len(rows)} variants measured in {seconds:.0f} s.**"]
    if best:
        lines.append(f"Best trade-offs (nothing else has both less memory and less KL): **{', '.join(best)}**.")
    lines += [f"✕ **{r.label}:** {r.error}" for r in failed]
    return "\n\n".join(lines)
