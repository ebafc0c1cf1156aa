"""Plotly figures for a concurrency sweep, both engines on each chart (pure: result in, figure out)."""

from __future__ import annotations

import plotly.graph_objects as go

from playground.measure.sweep import EngineSweep, SweepResult
from playground.views.charts import ENGINE_COLORS, empty, styled

SLOT_INDEX = {"A": 0, "B": 1}


def _color(engine: EngineSweep) -> str:
    return ENGINE_COLORS[SLOT_INDEX.get(engine.slot, 0)]


def _measured(result: SweepResult | None) -> list[EngineSweep]:
    return [e for e in (result.engines if result else ()) if any(lv.output_tok_s for lv in e.levels)]


def throughput_figure(result: SweepResult | None) -> go.Figure:
    """Output tokens/s against concurrency (log2 axis) per engine."""
    fig = go.Figure()
    engines = _measured(result)
    levels = sorted({lv.concurrency for e in engines for lv in e.levels})
    for e in engines:
        points = [lv for lv in e.levels if lv.output_tok_s]
        fig.add_trace(
            go.Scatter(
                x=[lv.concurrency for lv in points],
                y=[lv.output_tok_s for lv in points],
                name=e.label,
                mode="lines+markers",
                line={"color": _color(e), "width": 2.5},
                hovertemplate="concurrency %{x}: %{y:,.1f} tok/s",
            )
        )
    # Plotly's log axes are base 10; ticks at the measured levels make it read as log2.
    fig.update_xaxes(title_text="concurrent requests", type="log", tickvals=levels, ticktext=[str(c) for c in levels])
    fig.update_yaxes(title_text="output tokens/s", rangemode="tozero")
    if not engines:
        empty(fig, "Run a sweep: output throughput per concurrency level appears here")
    return styled(fig, "Throughput vs concurrency")


def latency_figure(result: SweepResult | None) -> go.Figure:
    """Output tokens/s against each level's end-to-end p95 latency, points labelled by concurrency."""
    fig = go.Figure()
    engines = _measured(result)
    for e in engines:
        points = [lv for lv in e.levels if lv.output_tok_s and lv.e2e_p95_ms is not None]
        fig.add_trace(
            go.Scatter(
                x=[lv.e2e_p95_ms for lv in points],
                y=[lv.output_tok_s for lv in points],
                text=[f"c={lv.concurrency}" for lv in points],
                textposition="top center",
                name=e.label,
                mode="lines+markers+text",
                line={"color": _color(e), "width": 2.5},
                hovertemplate="%{text}: %{y:,.1f} tok/s at p95 %{x:,.0f} ms",
            )
        )
    fig.update_xaxes(title_text="end-to-end latency per request, p95 (ms)", rangemode="tozero")
    fig.update_yaxes(title_text="output tokens/s", rangemode="tozero")
    if not engines:
        empty(fig, "Run a sweep: throughput against latency appears here (up and left is better)")
    styled(fig, "Throughput vs p95 latency (up and left is better)")
    fig.update_layout(hovermode="closest")  # the engines' points do not share x values
    return fig
