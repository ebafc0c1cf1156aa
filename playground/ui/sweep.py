"""The Gradio "Throughput" tab: a concurrency sweep of both engines, its charts and the crossover."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from playground.arena.core import Arena
from playground.arena.defaults import ASSETS
from playground.arena.loadgen import SweepBusy
from playground.measure.specs import SpecError
from playground.measure.sweep import (
    COLUMNS,
    SweepResult,
    SweepSettings,
    crossover,
    default_settings,
    level_rows,
    parse_levels,
)
from playground.views import sweep_charts

CANCEL_WAIT_S = 120.0  # in-flight streams stop at their next token; a level's poller may take a few s


@dataclass
class _Run:
    """One sweep started from this tab: its cancel flag and, once done, its result."""

    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: SweepResult | None = None


@dataclass
class _Runs:
    """The sweeps this tab has running, shared by its Run and Cancel events."""

    runs: dict[int, _Run] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def sweep_tab(arena: Arena) -> None:
    """Add the sweep's inputs, table, charts and events to the Blocks being built."""
    defaults = default_settings(arena.device.kind)
    gr.Markdown((ASSETS / "sweep.md").read_text())
    with gr.Row():
        levels = gr.Textbox(",".join(map(str, defaults.levels)), label="Concurrency levels", scale=2)
        requests = gr.Number(
            0, label="Requests per level (0: 2 × level, at least 8; never fewer than the level)", precision=0, minimum=0
        )
        input_tokens = gr.Number(defaults.input_tokens, label="Input tokens per request", precision=0)
        output_tokens = gr.Number(defaults.output_tokens, label="Output tokens per request", precision=0)
    with gr.Row():
        run = gr.Button("Run sweep ▶", variant="primary")
        cancel = gr.Button("Cancel", variant="stop")
    message = gr.Markdown()
    table = gr.Dataframe(headers=COLUMNS, value=[], interactive=False)
    with gr.Row():
        throughput_plot = gr.Plot(sweep_charts.throughput_figure(None), label="Throughput vs concurrency")
        latency_plot = gr.Plot(sweep_charts.latency_figure(None), label="Throughput vs p95 latency")
    gr.Markdown((ASSETS / "sweep_check.md").read_text())  # how far to trust the charts, and where that is shown
    outputs = [message, table, throughput_plot, latency_plot]
    runs = _Runs()
    # No queue limit on this event: a second click must hear "already running" at once, not wait its
    # turn and then sweep again (the arena itself allows one sweep at a time).
    event = run.click(
        _sweep_handler(arena, runs),
        [levels, requests, input_tokens, output_tokens],
        outputs,
        api_name="sweep",
        concurrency_limit=None,
    )
    cancel.click(_cancel_handler(runs), None, outputs, api_name="cancel_sweep", cancels=[event])


def _render(result: SweepResult | None, note: str = "") -> tuple[Any, ...]:
    """Message, table rows and both charts for a result (or only a note)."""
    lines = [note] if note else []
    if result is not None:
        if len(result.engines) == 2:
            lines.append(f"**{crossover(*result.engines)}**")
        if result.cancelled:
            lines.append("Cancelled: the levels that finished are shown.")
        lines += [f"✕ **{e.slot}:** {e.error}" for e in result.engines if e.error]
        lines += [f"⚠ {e.slot}: {n}" for e in result.engines for n in e.notes]
    rows = level_rows(result) if result else []
    return (
        "\n\n".join(lines),
        rows,
        sweep_charts.throughput_figure(result),
        sweep_charts.latency_figure(result),
    )


def _sweep_handler(arena: Arena, runs: _Runs):  # type: ignore[no-untyped-def]
    def sweep(
        levels: str,
        requests: float | None,
        input_tokens: float | None,
        output_tokens: float | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's way to ask for a progress bar
    ) -> tuple[Any, ...]:
        try:
            settings = SweepSettings(
                parse_levels(levels or ""), int(requests or 0), int(input_tokens or 0), int(output_tokens or 0)
            )
        except (ValueError, OverflowError) as exc:
            return _render(None, f"✕ {exc}")
        this = _Run()
        with runs.lock:
            runs.runs[id(this)] = this
        try:
            this.result = arena.sweeps.run(
                settings, on_progress=lambda f, text: progress(f, desc=text), cancel=this.stop
            )
        except (SpecError, SweepBusy) as exc:
            return _render(None, f"✕ {exc}")
        finally:
            with runs.lock:
                runs.runs.pop(id(this), None)
            this.done.set()
        return _render(this.result)

    return sweep


def _cancel_handler(runs: _Runs):  # type: ignore[no-untyped-def]
    def cancel() -> tuple[Any, ...]:
        with runs.lock:
            running = list(runs.runs.values())
        if not running:
            return _render(None, "No sweep is running.")
        for run in running:
            run.stop.set()
        for run in running:
            run.done.wait(CANCEL_WAIT_S)
        finished = [r.result for r in running if r.result is not None]
        return _render(finished[0] if finished else None, "" if finished else "Cancelled.")

    return cancel
