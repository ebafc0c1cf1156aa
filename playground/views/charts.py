"""Plotly figures: memory over time, request latency, KL per token, KV use, memory anatomy and the
session summary (pure: data in, figure out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypeVar

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from playground.measure.anatomy import MemoryPart
from playground.measure.ladder import LadderRow
from playground.measure.records import MemorySample, RequestRecord
from playground.measure.summary import EngineSummary

ENGINE_COLORS = ("#2563eb", "#ea580c")  # A blue, B orange: the same in every chart and pane
DEVICE_COLOR = "#6b7280"
PART_COLORS = {"weights": "#2563eb", "KV cache": "#16a34a", "CUDA graphs": "#9333ea", "runtime and rest": "#9ca3af"}
GIB = 2**30
THEME = "plotly_white"
CHART_POINTS = 300  # points per series in a live chart: a tenth of an hour's samples, a few tens of KB
T = TypeVar("T")


def _gib(value: float | None) -> float | None:
    return None if value is None else value / GIB


def empty(fig: go.Figure, note: str, panel: int | None = None) -> go.Figure:
    """A placeholder that says what will appear, instead of bare axes: over the whole figure, or over
    one panel of a one-row figure (`panel`, counted from 1), whose axis title stays."""
    axis = "" if panel in (None, 1) else str(panel)
    xref, yref = ("paper", "paper") if panel is None else (f"x{axis} domain", f"y{axis} domain")
    fig.add_annotation(
        text=note,
        showarrow=False,
        x=0.5,
        y=0.5,
        xref=xref,
        yref=yref,
        font={"size": 14, "color": DEVICE_COLOR},
    )
    if panel is None:
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    else:
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=panel)
    return fig


def use_theme() -> None:
    """Make the charts' template plotly's default in this process (the app calls it once): a new
    figure then starts in it unvalidated, and `styled` need not assign it, which validates and copies
    the whole template, about 25 ms a figure, most of the live charts' build."""
    pio.templates.default = THEME


def styled(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    theme = {} if pio.templates.default == THEME else {"template": THEME}
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}},
        height=height,
        margin={"l": 55, "r": 15, "t": 60, "b": 55},
        # Legend above the plot, right-aligned: below it, it collided with axis titles and dates.
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1.0, "xanchor": "right"},
        hovermode="x unified",
        **theme,
    )
    return fig


def thinned(points: Sequence[T], max_points: int = CHART_POINTS) -> list[T]:
    """At most `max_points` of a time series, evenly spaced, the newest always kept: a live chart's
    size stays bounded however long the session runs (exports keep every sample)."""
    if len(points) <= max_points:
        return list(points)
    step = len(points) / (max_points - 1)
    picked = [points[int(i * step)] for i in range(max_points - 1)]
    return [*picked, points[-1]]


def memory_figure(samples: Sequence[MemorySample], labels: Mapping[str, str]) -> go.Figure:
    """Memory per engine (process tree) and for the whole device, in GiB over wall-clock time."""
    fig = go.Figure()
    source = samples[-1].source if samples else "no samples yet"
    times = [datetime.fromtimestamp(s.t) for s in samples]
    for i, (slot, label) in enumerate(labels.items()):
        values = [_gib(s.engines.get(slot)) for s in samples]
        fig.add_trace(
            go.Scatter(x=times, y=values, name=label, mode="lines", line={"color": ENGINE_COLORS[i % 2], "width": 2.5})
        )
    # Engines over several GPUs: a thin line per engine and GPU, and each GPU's total (NVML indices).
    gpus = sorted({i for s in samples for split in s.by_gpu.values() for i in split})
    if len(gpus) > 1:
        for i, (slot, label) in enumerate(labels.items()):
            for g in gpus:
                values = [_gib(s.by_gpu.get(slot, {}).get(g)) for s in samples]
                if any(v for v in values):
                    fig.add_trace(
                        go.Scatter(
                            x=times,
                            y=values,
                            name=f"{label} on GPU {g}",
                            mode="lines",
                            line={"color": ENGINE_COLORS[i % 2], "width": 1, "dash": "dash"},
                        )
                    )
        for g in gpus:
            fig.add_trace(
                go.Scatter(
                    x=times,
                    y=[_gib(s.gpus_used.get(g)) for s in samples],
                    name=f"GPU {g} used",
                    mode="lines",
                    line={"color": DEVICE_COLOR, "width": 1},
                )
            )
    if samples:
        fig.add_trace(
            go.Scatter(
                x=times,
                y=[s.device_used / GIB for s in samples],
                name="device total used" if len(gpus) <= 1 else "all GPUs used",
                mode="lines",
                line={"color": DEVICE_COLOR, "dash": "dot"},
            )
        )
    fig.update_yaxes(title_text="GiB", rangemode="tozero")
    if not samples:
        empty(fig, "Memory appears here once an engine starts")
    return styled(fig, f"Memory · {source}")


def latency_figure(records: Sequence[RequestRecord], labels: Mapping[str, str]) -> go.Figure:
    """Time to first token and decode speed of every request, per engine. Requests that shared their
    engine with others (vLLM batched them) are open markers off the line: not the engine's own speed."""
    # What each panel shows goes on its y axis: subplot titles sat where the legend is and collided.
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12)
    for i, (slot, label) in enumerate(labels.items()):
        mine = [r for r in records if r.slot == slot and not r.error]
        color = ENGINE_COLORS[i % 2]
        for shared in (False, True):
            part = [r for r in mine if bool(r.shared_with) == shared]
            if shared and not part:
                continue
            name = f"{label} (shared)" if shared else label
            for col, values in enumerate(([r.timing.ttft_ms for r in part], [r.timing.decode_tok_s for r in part]), 1):
                trace = go.Scatter(
                    x=[r.request_no for r in part],
                    y=values,
                    name=name,
                    mode="markers" if shared else "lines+markers",
                    line={"color": color},
                    marker={"symbol": "circle-open", "size": 9} if shared else {},
                    text=[f"shared with up to {r.shared_with} other requests" for r in part] if shared else None,
                    legendgroup=name,
                    showlegend=col == 1,
                )
                fig.add_trace(trace, row=1, col=col)
    fig.update_xaxes(title_text="request #")
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title_text="time to first token (ms)", row=1, col=1)
    fig.update_yaxes(title_text="decode (tokens/s)", row=1, col=2)
    if not any(not r.error for r in records):
        empty(fig, "Send a prompt: each request adds a point per engine")
    return styled(fig, "Latency per request")


def kl_figure(kl_forced: Sequence[float], kl_free: Sequence[float], first_divergence: int | None) -> go.Figure:
    """KL(A‖B) per output position, teacher-forced and free-running, with the first divergence marked."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            y=list(kl_forced),
            name="teacher-forced (B on A's tokens)",
            mode="lines+markers",
            line={"color": ENGINE_COLORS[1]},
        )
    )
    fig.add_trace(
        go.Scatter(
            y=list(kl_free),
            name="free-running (until the answers part)",
            mode="lines",
            line={"color": ENGINE_COLORS[0], "dash": "dot"},
        )
    )
    if first_divergence is not None:
        fig.add_vline(
            x=first_divergence,
            line={"color": "#dc2626", "dash": "dash"},
            annotation_text="first difference",
            annotation_position="top right",
        )
    fig.update_xaxes(title_text="output token position")
    fig.update_yaxes(title_text="KL (nats, lower bound)", rangemode="tozero")
    if not kl_forced and not kl_free:
        empty(fig, "Measure a prompt to see where B departs from A")
    return styled(fig, "KL divergence of B from A per token")


def kv_usage_figure(series: Sequence[tuple[float, Mapping[str, float | None]]], labels: Mapping[str, str]) -> go.Figure:
    """Share of each engine's KV cache in use over time (vLLM's kv_cache_usage_perc)."""
    fig = go.Figure()
    times = [datetime.fromtimestamp(t) for t, _ in series]
    for i, (slot, label) in enumerate(labels.items()):
        values = [None if u.get(slot) is None else 100 * u[slot] for _, u in series]  # type: ignore[operator]
        fig.add_trace(
            go.Scatter(x=times, y=values, name=label, mode="lines", line={"color": ENGINE_COLORS[i % 2], "width": 2})
        )
    fig.update_yaxes(title_text="% in use", rangemode="tozero")
    if not series:
        empty(fig, "KV-cache use appears once an engine is ready")
    return styled(fig, "KV cache in use (vLLM /metrics)", height=260)


def anatomy_figure(parts_by_engine: Mapping[str, Sequence[MemoryPart]]) -> go.Figure:
    """One stacked horizontal bar per engine, in GiB, parts in a fixed order and color."""
    fig = go.Figure()
    labels = list(parts_by_engine)
    for part in PART_COLORS:
        values = []
        for label in labels:
            found = next((p for p in parts_by_engine[label] if p.name == part), None)
            values.append(None if found is None else found.bytes / 2**30)
        if any(v is not None for v in values):
            fig.add_trace(
                go.Bar(
                    y=labels,
                    x=values,
                    name=part,
                    orientation="h",
                    marker_color=PART_COLORS[part],
                    hovertemplate="%{x:.2f} GiB",
                )
            )
    fig.update_layout(barmode="relative")
    fig.update_xaxes(title_text="GiB")
    if not parts_by_engine:
        empty(fig, "Each ready engine gets a bar: weights, KV cache, graphs, the rest")
    return styled(fig, "Where each engine's memory goes", height=260)


def summary_figure(rows: Sequence[EngineSummary]) -> go.Figure:
    """Three bars per engine: weights, decode speed, perplexity (each on its own axis, named on it:
    subplot titles sat where the legend is and collided); a panel with nothing measured says why."""
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09)
    panels = (
        ("weights (GiB)", "no engine ready yet", [r.weights_gib for r in rows]),
        ("decode (tok/s, median)", "send a few compares first", [r.decode_tok_s for r in rows]),
        ("perplexity", "run the Quality tab first", [r.perplexity for r in rows]),
    )
    for i, r in enumerate(rows):
        color = ENGINE_COLORS[i % 2]
        for col, (_, _, values) in enumerate(panels, start=1):
            fig.add_trace(
                go.Bar(
                    x=[r.slot],
                    y=[values[i]],
                    name=r.label,
                    marker_color=color,
                    legendgroup=r.label,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    for col, (title, hint, values) in enumerate(panels, start=1):
        fig.update_yaxes(title_text=title, row=1, col=col)
        if all(v is None for v in values):
            empty(fig, hint, panel=col)
    return styled(fig, "Memory vs speed vs quality (this session)")


def _inward(x: float, xs: Sequence[float]) -> str:
    """Where a point's label goes: toward the middle for the leftmost and rightmost points."""
    if len(xs) > 1 and x == min(xs) != max(xs):
        return "top right"
    if len(xs) > 1 and x == max(xs) != min(xs):
        return "top left"
    return "top center"


def ladder_figure(rows: Sequence[LadderRow], best: Sequence[str]) -> go.Figure:
    """Weights against quality loss, one point per variant: down and left is better; the variants no
    other beats on both (`best`) are drawn filled and joined by a line."""
    fig = go.Figure()
    scored = [r for r in rows if r.weights_gb is not None and r.kl_mean is not None]
    front = sorted((r for r in scored if r.label in best), key=lambda r: r.weights_gb or 0.0)
    if len(front) > 1:
        fig.add_trace(
            go.Scatter(
                x=[r.weights_gb for r in front],
                y=[r.kl_mean for r in front],
                mode="lines",
                line={"color": DEVICE_COLOR, "dash": "dot"},
                name="best trade-offs",
                hoverinfo="skip",
            )
        )
    xs = [r.weights_gb or 0.0 for r in scored]
    for r in scored:
        on_front = r.label in best
        fig.add_trace(
            go.Scatter(
                x=[r.weights_gb],
                y=[r.kl_mean],
                mode="markers+text",
                text=[r.label],
                textposition=_inward(r.weights_gb or 0.0, xs),
                cliponaxis=False,
                marker={"size": 14, "symbol": "circle" if on_front else "circle-open", "color": ENGINE_COLORS[0]},
                name=r.label,
                showlegend=False,
                hovertemplate=f"{r.label}<br>%{{x:.3f}} GB<br>KL %{{y:.4f}} nats/token<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="weights (GB, as loaded)")
    fig.update_yaxes(title_text="KL vs baseline (nats/token)", rangemode="tozero")
    if scored:  # room around the points, so that the labels of the outermost ones stay inside the plot
        low, high = min(xs), max(xs)
        pad = 0.15 * (high - low) or 0.15 * abs(high) or 0.1
        top = max(r.kl_mean or 0.0 for r in scored)
        fig.update_xaxes(range=[low - pad, high + pad])
        fig.update_yaxes(range=[0, 1.3 * top if top > 0 else 1.0])
    else:
        empty(fig, "Run the ladder: each variant becomes a point, memory against quality loss")
    return styled(fig, "Memory against quality loss (down and left is better)", height=360)
