"""The Gradio shell: builds the Blocks over an `Arena`; it parses input, calls the core, renders."""

from __future__ import annotations

import importlib.util
import shlex
import sys
import time
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from playground.arena.core import SLOT_NAMES, Arena
from playground.arena.defaults import ASSETS, Storage
from playground.arena.settings import AppSettings
from playground.measure.anatomy import WeightsCheck
from playground.measure.specs import (
    DTYPE_CHOICES,
    KV_CACHE_DTYPE_CHOICES,
    QUANTIZATION_CHOICES,
    EngineSpec,
    SpecError,
    parse_devices,
)
from playground.measure.summary import decode_speeds
from playground.ui.accuracy import accuracy_tab
from playground.ui.compare import compare_tab
from playground.ui.history import history_tab, list_handler
from playground.ui.ladder import ladder_tab
from playground.ui.live import CARDS_TICK_S, CHARTS_TICK_S, LiveRefresh
from playground.ui.planner import planner_tab
from playground.ui.public import make_public, public_value
from playground.ui.quality import quality_tab
from playground.ui.quantize import quantize_tab
from playground.ui.summary import summary_tab
from playground.ui.sweep import sweep_tab
from playground.ui.ticks import PageTicks
from playground.views import cards, charts
from playground.views.run_yourself import as_markdown

CSS = """
.slot-A h3 { color: #2563eb; } .slot-B h3 { color: #ea580c; }
.pane-A textarea { border-left: 4px solid #2563eb !important; }
.pane-B textarea { border-left: 4px solid #ea580c !important; }
.message { min-height: 0; }
footer { display: none !important; }
.export-file { max-height: 150px; overflow: hidden; }
"""
LAUNCH_OPTIONS: dict[str, Any] = {"theme": gr.themes.Soft(primary_hue="blue"), "css": CSS}


def _intro(arena: Arena, locked: bool) -> str:
    path = ASSETS / "intro.md"
    text = path.read_text() if path.exists() else "# vLLM Quantization Playground"
    d = arena.device
    text += f"\n\n**Device:** {d.name} · {d.total_bytes / 1e9:,.0f} GB · memory from " + (
        "NVML" if d.kind == "cuda" else "process memory (psutil; no NVIDIA GPU here)"
    )
    if locked:
        lim = arena.limits
        rate = f" · {lim.requests_per_minute} requests a minute" if lim.requests_per_minute else ""
        tokens = f" · max_tokens up to {lim.max_tokens}" if lim.max_tokens else ""
        text += (
            "\n\n**Public instance:** the engines are fixed by the operator; you can prompt them and read "
            f"everything they report. Limits: prompts up to {lim.max_prompt_chars:,} characters{tokens}{rate}."
        )
    return text


def _settings(spec: EngineSpec) -> list[gr.components.Component]:
    with gr.Accordion("Engine settings", open=False):
        model = gr.Textbox(spec.model, label="Model (Hugging Face id, local path, or tiny/bf16|awq|gptq)")
        with gr.Row():
            quant = gr.Dropdown(
                list(QUANTIZATION_CHOICES),
                value=spec.quantization,
                label="Quantization",
                allow_custom_value=True,
                info="fp8 (GPU) and bitsandbytes quantize at load time; the rest need a checkpoint (Quantize tab)",
            )
            dtype = gr.Dropdown(list(DTYPE_CHOICES), value=spec.dtype, label="dtype")
            kv = gr.Dropdown(list(KV_CACHE_DTYPE_CHOICES), value=spec.kv_cache_dtype, label="KV cache dtype")
        with gr.Row():
            util = gr.Slider(
                0.05,
                0.95,
                value=spec.gpu_memory_utilization,
                step=0.05,
                label="gpu_memory_utilization (both together ≤ 0.95)",
            )
            max_len = gr.Number(spec.max_model_len, label="max_model_len", precision=0)
        with gr.Row():
            eager = gr.Checkbox(spec.enforce_eager, label="enforce_eager (no CUDA graphs)")
            tp = gr.Number(spec.tensor_parallel_size, label="tensor_parallel_size", precision=0, minimum=1)
            devices = gr.Textbox(
                ",".join(map(str, spec.devices)),
                label="GPUs (devices, e.g. 0,1; empty: this slot's default)",
                placeholder="0,1",
            )
        extra = gr.Textbox(" ".join(spec.extra_args), label="Extra engine arguments (e.g. --max-num-seqs 64)")
        with gr.Row():
            endpoint = gr.Textbox(
                spec.endpoint, label="…or attach to an existing vLLM endpoint (URL)", placeholder="http://host:8000"
            )
            key = gr.Textbox(spec.api_key, label="Endpoint API key", type="password")
    return [model, quant, dtype, util, max_len, kv, eager, tp, extra, endpoint, key, devices]


def _spec_from_form(arena: Arena, name: str, values: tuple[Any, ...]) -> EngineSpec:
    model, quant, dtype, util, max_len, kv, eager, tp, extra, endpoint, key, *rest = values
    try:
        extra_args = tuple(shlex.split(extra or ""))
    except ValueError as exc:
        raise SpecError(f"extra engine arguments: {exc}") from exc
    devices = parse_devices(str(rest[0])) if rest and str(rest[0] or "").strip() else ()
    return arena.with_spec(
        name,
        model=(model or "").strip(),
        quantization=quant or "auto",
        dtype=dtype or "auto",
        gpu_memory_utilization=float(util),
        max_model_len=int(max_len) if max_len else None,
        kv_cache_dtype=kv or "auto",
        enforce_eager=bool(eager),
        tensor_parallel_size=int(tp or 1),
        devices=devices,
        extra_args=extra_args,
        endpoint=(endpoint or "").strip(),
        api_key=key or "",
        label="",
    )


def build_ui(arena: Arena, settings: AppSettings | None = None, storage: Storage | None = None) -> gr.Blocks:
    """The whole app over one arena; every event has an api_name (scriptable, testable).

    Locked (a public instance): no engine settings, start or stop, not even as API endpoints;
    visitors prompt the operator's engines within the arena's limits. `storage` (app.py's choice of
    data folder) lets the History tab say whether the history outlasts a restart."""
    settings = settings or AppSettings()
    locked = settings.locked
    _no_matplotlib_search()
    charts.use_theme()  # before any figure is built: styled() then skips validating the template
    with gr.Blocks(title="vLLM Quantization Playground") as demo:
        gr.Markdown(_intro(arena, locked))
        cards = _engine_row(arena, locked)
        with gr.Tab("Compare"):
            tab = compare_tab(arena, settings)
        with gr.Tab("Quality"):
            quality_tab(arena)
        with gr.Tab("Summary"):
            summary_tab(arena)
        with gr.Tab("History") as saved:
            saved_table = history_tab(arena, locked, storage)
        with gr.Tab("Accuracy"):  # locked: the operator's latest results only (an evaluation runs for minutes)
            accuracy_tab(arena, locked)
        if not locked:  # a sweep loads the engines for minutes: the operator's tool, not a visitor's
            with gr.Tab("Throughput"):
                sweep_tab(arena)
            with gr.Tab("Ladder"):  # swaps restart or wake engines: the operator's tool too
                ladder_tab(arena)
            with gr.Tab("Quantize"):  # runs a quantizer process and restarts both engines: the operator's
                quantize_tab(arena)
        with gr.Tab("What fits where"):
            planner_tab(arena.device, presets_only=locked)
        saved.select(list_handler(arena, locked), None, saved_table, api_visibility="private")
        # Locked: the refresh scrubs what it builds once per build, not once per page (ui/public.py).
        live = LiveRefresh(arena, tab.plots, _card, public=public_value(arena) if locked else None)
        fast = [cards["A"], cards["B"], tab.room]
        slow = [*tab.plots, tab.history]
        # Outside the queue: a page's tick never takes a compare's place nor meets "Queue is full"
        # (ui/live.py); each page sends its next tick only when the last one is answered.
        gr.Timer(CARDS_TICK_S).tick(live.cards, None, fast, api_name="refresh", show_progress="hidden", queue=False)
        gr.Timer(CHARTS_TICK_S).tick(
            live.charts, None, slow, api_name="refresh_charts", show_progress="hidden", queue=False
        )
        # The page shows the current state at once, not the state when the app started.
        demo.load(live.cards, None, fast, api_visibility="private", queue=False)
        demo.load(live.charts, None, slow, api_visibility="private", queue=False)
        demo.live = live  # type: ignore[attr-defined]  # its build counters, for tests and benchmarks
    return make_public(demo, arena) if locked else demo  # no host path, port or key reaches a visitor


def with_queue(demo: gr.Blocks, settings: AppSettings) -> gr.Blocks:
    """The queue the app serves with: each event's concurrency is set in build_ui (compare: settings'
    concurrency, all batched by vLLM); `queue_size` waiting events at most, then "Queue is full". The
    page's refresh runs outside the queue."""
    return polled_gently(demo.queue(default_concurrency_limit=2, max_size=settings.queue_size))


# Gradio 6.31's queue looks for new events every 1 ms while it has none, and for progress to send every 10 ms
# (`gradio/queueing.py`, `sleep_when_free`): 5.1-5.5 % of a core for an idle app on this 2-core machine. At 10 ms
# and 50 ms it is 2.2 % (bench/idle_app.py); an event then starts at most 10 ms later, in a compare of seconds.
QUEUE_POLL_S = 0.01
PROGRESS_POLL_S = 0.05


def polled_gently(demo: gr.Blocks) -> gr.Blocks:
    """The queued app, its queue looking for work every QUEUE_POLL_S instead of every millisecond (a Gradio
    without these attributes is left as it is)."""
    queue = getattr(demo, "_queue", None)
    if queue is not None and hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = max(queue.sleep_when_free, QUEUE_POLL_S)
        progress = getattr(queue, "progress_update_sleep_when_free", 0.0)
        queue.progress_update_sleep_when_free = max(progress, PROGRESS_POLL_S)
    return demo


def launch_options(settings: AppSettings, demo: gr.Blocks | None = None) -> dict[str, Any]:
    """demo.launch() options: the theme and CSS, worker threads for every event type together
    (Gradio's default of 40 would cap a class of 40 streaming compares plus their pages' refreshes),
    and with `demo`, its page ticks answered from bytes (ui/ticks.py)."""
    options = {**LAUNCH_OPTIONS, "max_threads": settings.max_threads}
    if (live := getattr(demo, "live", None)) is not None:
        # Each event's function id, read once: the middleware asks for it on every page's tick.
        fn_ids = {fn.api_name: i for i, fn in demo.fns.items() if isinstance(fn.api_name, str)}  # type: ignore[union-attr]
        ticks = Middleware(
            PageTicks,
            live=live,
            auth=lambda: bool(getattr(demo, "auth", None)),
            known=lambda session: session in demo.state_holder,  # type: ignore[union-attr]
            fn_index=fn_ids.get,
        )
        options["app_kwargs"] = {"middleware": [ticks]}
    return options


def _engine_row(arena: Arena, locked: bool) -> dict[str, gr.Markdown]:
    """One card per slot; with its settings and start/stop buttons unless the instance is locked."""
    cards: dict[str, gr.Markdown] = {}
    with gr.Row(equal_height=False):
        for name in SLOT_NAMES:
            slot = arena.slot(name)
            with gr.Column(elem_classes=[f"slot-{name}"]):
                cards[name] = gr.Markdown(_card(arena, name))
                if locked:
                    continue  # no form, no buttons, no events: nothing a visitor could call
                form = _settings(slot.spec)
                with gr.Row():
                    start = gr.Button(f"Start / restart {name}", variant="secondary")
                    stop = gr.Button(f"Stop {name}", variant="stop")
                start.click(_start_handler(arena, name), form, cards[name], api_name=f"start_{name.lower()}")
                stop.click(_stop_handler(arena, name), None, cards[name], api_name=f"stop_{name.lower()}")
    return cards


def _card(arena: Arena, name: str, check: WeightsCheck | None = None) -> str:
    slot = arena.slot(name)
    source = arena.samples[-1].source if arena.samples else ""
    extra: list[str] = []
    if slot.engine is not None and arena.status(name).state == "ready":
        report = slot.engine.log_report()
        extra = cards.loaded_lines(report.kernel, report.loaded_quantization, check or arena.insights.anatomy(name)[1])
        if report.weights_per_gpu:
            per = " · ".join(f"GPU {i} {w:.2f}" for i, w in enumerate(report.weights_per_gpu))
            extra.append(f"weights per tensor-parallel rank (vLLM log, GiB): {per}; total {report.weights_gib:.2f}")
        if arena.samples and len(split := arena.samples[-1].by_gpu.get(name, {})) > 1:
            per = " · ".join(f"GPU {i} {b / 2**30:.1f} GiB" for i, b in sorted(split.items()))
            extra.append(f"memory per GPU (NVML): {per}; total {sum(split.values()) / 2**30:.1f} GiB")
        if swap := arena.variants.swaps.get(name):
            how = "woke from sleep" if swap.woke else swap.method
            extra.append(
                f"swapped in {swap.seconds:.1f} s ({how}) at {time.strftime('%H:%M:%S', time.localtime(swap.at))}"
            )
        if share := arena.insights.decode_share(name):
            speed, ceiling = share
            extra.append(
                f"decode median {speed:,.0f} tok/s = **{speed / ceiling * 100:.0f} %** of the batch-1 "
                f"ceiling ({ceiling:,.0f} tok/s: memory bandwidth / weights), over answers that ran alone"
            )
        elif arena.device.kind == "cuda" and decode_speeds(arena.history, name, alone=False):
            extra.append(
                "share of the batch-1 ceiling: no answer has run alone on this engine yet (batched ones do not count)"
            )
    if slot.spec.attached:
        extra.append(
            "attached endpoint: no NVML for it here, so its memory comes from its /metrics only (KV cache); "
            "timings include the network"
        )
    if not slot.spec.attached:
        code = as_markdown(arena.insights.run_yourself(name))
        extra.append(f"<details><summary>Run this yourself</summary>\n\n{code}\n\n</details>")
    return cards.engine_card(
        slot.label,
        slot.spec,
        arena.status(name),
        slot.metrics,
        arena.watch.memory_mb(name),
        source,
        slot.metrics_error or arena.sampler.last_error,
        extra,
    )


def _start_handler(arena: Arena, name: str):  # type: ignore[no-untyped-def]
    def start(*values: Any) -> str:
        try:
            arena.start_in_background(name, _spec_from_form(arena, name, values))
        except SpecError as exc:
            return _card(arena, name) + f"\n\n✕ **Not started:** {exc}"
        return _card(arena, name)

    return start


def _stop_handler(arena: Arena, name: str):  # type: ignore[no-untyped-def]
    def stop() -> str:
        try:
            arena.stop(name)  # waits for the running compares
        except SpecError as exc:
            return _card(arena, name) + f"\n\n✕ **Not stopped:** {exc}"
        return _card(arena, name)

    return stop


def _no_matplotlib_search() -> None:
    """Gradio 6.31 imports matplotlib around every event (utils.MatplotlibBackendMananger) and the app
    does not install it: each failed import searched sys.path again, 6 % of the app's CPU under a class
    (docs/performance.md, section 7). A None in sys.modules makes the import fail at once."""
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]
