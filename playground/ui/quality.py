"""The Gradio "Quality" tab: where B's greedy answer departs from A's, KL per token, perplexity."""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.arena.core import Arena
from playground.arena.defaults import ASSETS
from playground.engines.client import GenerationError
from playground.engines.server import EngineError
from playground.measure.specs import SpecError
from playground.ui.history import visitor_key
from playground.views import cards, charts

COLORS = {"first difference": "#ef4444", "after": "#fecaca"}


def quality_tab(arena: Arena) -> None:
    """Add the tab's components and events to the Blocks being built."""
    gr.Markdown((ASSETS / "quality.md").read_text())
    with gr.Row(equal_height=True):
        prompt = gr.Textbox("The default value is", label="Prompt (plain completion, greedy)", scale=4)
        max_tokens = gr.Number(48, label="max_tokens", precision=0, scale=1)
        run = gr.Button("Measure ▶", variant="primary", scale=1)
    reference = (ASSETS / "reference.txt").read_text()
    with gr.Accordion("Reference text for perplexity (public domain: the Gettysburg Address)", open=False):
        text = gr.Textbox(reference, lines=6, label="Both engines score this text; clear it to skip")
    summary = gr.Markdown()
    with gr.Row():
        pane_a = gr.HighlightedText(label="A", color_map=COLORS, combine_adjacent=False, show_legend=True)
        pane_b = gr.HighlightedText(label="B", color_map=COLORS, combine_adjacent=False, show_legend=True)
    kl_plot = gr.Plot(charts.kl_figure([], [], None), label="KL per token")
    run.click(
        _measure_handler(arena), [prompt, max_tokens, text], [summary, pane_a, pane_b, kl_plot], api_name="quality"
    )


def _measure_handler(arena: Arena):  # type: ignore[no-untyped-def]
    def measure(prompt: str, max_tokens: float, text: str, request: gr.Request) -> tuple[Any, ...]:
        try:
            visitor = visitor_key(request)
            tokens = int(max_tokens or 0)
            report = arena.insights.quality(prompt or "", max_tokens=tokens, text=text or None, visitor=visitor)
        except (SpecError, EngineError, GenerationError, ValueError) as exc:
            return f"✕ {exc}", [], [], charts.kl_figure([], [], None)
        first = report.divergence.first_divergence
        return (
            cards.quality_summary(report),
            cards.highlighted_tokens(report.answer_a.pieces, first),
            cards.highlighted_tokens(report.answer_b.pieces, first),
            charts.kl_figure(report.kl_forced, report.kl_free, first),
        )

    return measure
