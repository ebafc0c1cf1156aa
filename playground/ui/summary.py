"""The Gradio "Summary" tab: memory vs speed vs quality for both engines over the session."""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.arena.core import Arena
from playground.measure.summary import COLUMNS, summary_rows
from playground.views.accuracy import RESULT_COLUMNS, result_rows, summary_line
from playground.views.charts import summary_figure

NOTE = (
    "Weights: vLLM's own \"Model loading took\" figure on GPUs, the checkpoint's files on disk on the CPU "
    "(whose vLLM build logs none). KV cache: vLLM's `/metrics`. Decode: median over this session's "
    "requests (run a few compares first). Agreement and perplexity: the latest Quality measurement."
)


def summary_tab(arena: Arena) -> None:
    """Add the summary table, chart and refresh button to the Blocks being built."""
    gr.Markdown(NOTE)
    refresh = gr.Button("Refresh summary", variant="secondary")
    table = gr.Dataframe(headers=COLUMNS, interactive=False)
    chart = gr.Plot(label="Memory vs speed vs quality")
    refresh.click(_summary_handler(arena), None, [table, chart], api_name="summary")
    accuracy = gr.Markdown()
    refresh.click(_accuracy_handler(arena), None, accuracy, api_name="summary_accuracy")


def _accuracy_handler(arena: Arena):  # type: ignore[no-untyped-def]
    def run() -> str:
        reports = [r for r in arena.accuracy.reports(limit=1) if "engines" in r]
        if not reports:
            return "Accuracy: none measured yet (the Accuracy tab)."
        rows = result_rows(reports[0])
        head = "| " + " | ".join(RESULT_COLUMNS) + " |\n|" + "---|" * len(RESULT_COLUMNS) + "\n"
        body = "".join("| " + " | ".join(r) + " |\n" for r in rows)
        return f"Accuracy, the latest evaluation: {summary_line(reports[0])}\n\n{head}{body}"

    return run


def _summary_handler(arena: Arena):  # type: ignore[no-untyped-def]
    def run() -> tuple[Any, ...]:
        rows = arena.insights.summary()
        return summary_rows(rows), summary_figure(rows)

    return run
