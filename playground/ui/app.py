"""The Gradio shell: builds the Blocks over an `Arena`; it parses input, calls the core, renders."""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from playground.arena.core import SLOT_NAMES, Arena
from playground.arena.defaults import ASSETS, Storage
from playground.arena.settings import AppSettings
from playground.measure.anatomy import WeightsCheck
from playground.measure.generation import MODES, GenerationParams
from playground.measure.specs import (
    DTYPE_CHOICES,
    KV_CACHE_DTYPE_CHOICES,
    QUANTIZATION_CHOICES,
    EngineSpec,
    SpecError,
    parse_devices,
)
from playground.ui.accuracy import accuracy_tab
from playground.ui.history import history_tab, list_handler, visitor_key
from playground.ui.ladder import ladder_tab
from playground.ui.planner import planner_tab
from playground.ui.quality import quality_tab
from playground.ui.quantize import quantize_tab
from playground.ui.summary import summary_tab
from playground.ui.sweep import sweep_tab
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
EXAMPLES = [
    "Explain in two sentences what a hash table is.",
    "The default value is",
    "This module provides",
]


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
    with gr.Blocks(title="vLLM Quantization Playground") as demo:
        gr.Markdown(_intro(arena, locked))
        cards = _engine_row(arena, locked)
        with gr.Tab("Compare"):
            live = _compare_tab(arena, settings)
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
        timer = gr.Timer(1.0)
        refresh = _refresh_handler(arena)
        outputs = [cards["A"], cards["B"], *live]
        timer.tick(refresh, None, outputs, api_name="refresh", show_progress="hidden", concurrency_limit=4)
        # The page shows the current state at once, not the state when the app started.
        demo.load(refresh, None, outputs, api_visibility="private", concurrency_limit=4)
    return demo


def with_queue(demo: gr.Blocks, settings: AppSettings) -> gr.Blocks:
    """The queue the app serves with: each event's concurrency is set in build_ui (compare: settings'
    concurrency; refresh: 4, shared result); `queue_size` waiting events at most, then "Queue is full"."""
    return demo.queue(default_concurrency_limit=2, max_size=settings.queue_size)


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


def _compare_tab(arena: Arena, settings: AppSettings) -> list[gr.components.Component]:
    """Prompt, both answer panes, live charts and history; returns the components the timer refreshes."""
    panes: dict[str, gr.Textbox] = {}
    figures: dict[str, gr.Markdown] = {}
    # The tiny model learned docstrings, not dialogue: plain completion of a docstring opening suits it.
    tiny = any(s.spec.model.startswith("tiny/") for s in arena.slots.values())
    with gr.Row(equal_height=True):
        prompt = gr.Textbox(label="Prompt (sent to both engines)", lines=3, value=EXAMPLES[1 if tiny else 0], scale=5)
        go_btn = gr.Button("Compare ▶", variant="primary", scale=1, min_width=150, size="lg")
    with gr.Row():
        separate = arena.separate_gpus()
        mode = gr.Radio(
            list(MODES),
            value="simultaneous" if separate else "fair",
            label="Mode",
            scale=2,
            info=(
                "A and B are on different GPUs: simultaneous is fair here (neither slows the other)"
                if separate
                else "fair: A then B, so neither slows the other · simultaneous: both at once"
            ),
        )
        chat = gr.Checkbox(not tiny, label="Chat template", info="off: plain completion", scale=1)
    with gr.Accordion("Sampling", open=False), gr.Row():
        temperature = gr.Slider(0, 2, value=0.0, step=0.05, label="temperature")
        top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="top_p")
        limit = arena.limits.max_tokens
        max_tokens = gr.Number(
            min(96, limit or 96), label="max_tokens" + (f" (up to {limit})" if limit else ""), precision=0
        )
        seed = gr.Number(0, label="seed", precision=0)
    gr.Examples(EXAMPLES, prompt)
    message = gr.Markdown(elem_classes=["message"])
    with gr.Row():
        for name in SLOT_NAMES:
            with gr.Column():
                panes[name] = gr.Textbox(
                    label=f"Answer {name}", lines=10, max_lines=18, interactive=False, elem_classes=[f"pane-{name}"]
                )
                figures[name] = gr.Markdown()
    with gr.Row():
        memory_plot = gr.Plot(charts.memory_figure([], arena.labels()), label="Memory")
        latency_plot = gr.Plot(charts.latency_figure([], arena.labels()), label="Latency")
    with gr.Row():
        with gr.Column(scale=3):
            anatomy_plot = gr.Plot(charts.anatomy_figure({}), label="Memory anatomy")
            kv_plot = gr.Plot(charts.kv_usage_figure([], arena.labels()), label="KV cache in use")
        with gr.Column(scale=2):
            gr.Markdown((ASSETS / "teaching.md").read_text())
    with gr.Accordion("History", open=True):
        history = gr.Dataframe(headers=cards.HISTORY_COLUMNS, value=[], interactive=False, wrap=True)
    inputs = [prompt, mode, chat, temperature, top_p, max_tokens, seed]
    outputs = [panes["A"], panes["B"], figures["A"], figures["B"], message]
    # Compares from different visitors run together (vLLM batches them); more wait in the queue.
    go_btn.click(
        _compare_handler(arena),
        inputs,
        outputs,
        api_name="compare",
        concurrency_limit=settings.concurrency,
        concurrency_id="compare",
    )
    prompt.submit(_compare_handler(arena), inputs, outputs, api_visibility="private", concurrency_id="compare")
    return [memory_plot, latency_plot, anatomy_plot, kv_plot, history]


def _card(arena: Arena, name: str, check: WeightsCheck | None = None) -> str:
    slot = arena.slot(name)
    source = arena.samples[-1].source if arena.samples else ""
    extra: list[str] = []
    if slot.engine is not None and arena.status(name).state == "ready":
        report = slot.engine.log_report()
        extra = cards.loaded_lines(report.kernel, report.loaded_quantization, check or arena.anatomy(name)[1])
        if report.weights_per_gpu:
            per = " · ".join(f"GPU {i} {w:.2f}" for i, w in enumerate(report.weights_per_gpu))
            extra.append(f"weights per tensor-parallel rank (vLLM log, GiB): {per}; total {report.weights_gib:.2f}")
        if arena.samples and len(split := arena.samples[-1].by_gpu.get(name, {})) > 1:
            per = " · ".join(f"GPU {i} {b / 2**30:.1f} GiB" for i, b in sorted(split.items()))
            extra.append(f"memory per GPU (NVML): {per}; total {sum(split.values()) / 2**30:.1f} GiB")
        if swap := arena.swaps.get(name):
            how = "woke from sleep" if swap.woke else swap.method
            extra.append(
                f"swapped in {swap.seconds:.1f} s ({how}) at {time.strftime('%H:%M:%S', time.localtime(swap.at))}"
            )
        if share := arena.decode_share(name):
            speed, ceiling = share
            extra.append(
                f"decode median {speed:,.0f} tok/s = **{speed / ceiling * 100:.0f} %** of the batch-1 "
                f"ceiling ({ceiling:,.0f} tok/s: memory bandwidth / weights)"
            )
    if slot.spec.attached:
        extra.append(
            "attached endpoint: no NVML for it here, so its memory comes from its /metrics only (KV cache); "
            "timings include the network"
        )
    if not slot.spec.attached:
        code = as_markdown(arena.run_yourself(name))
        extra.append(f"<details><summary>Run this yourself</summary>\n\n{code}\n\n</details>")
    return cards.engine_card(
        slot.label,
        slot.spec,
        arena.status(name),
        slot.metrics,
        arena.memory_mb(name),
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
        arena.stop(name)
        return _card(arena, name)

    return stop


def _refresh_handler(arena: Arena, max_age_s: float = 0.5):  # type: ignore[no-untyped-def]
    # Every open page ticks once a second and all see the same state: build it at most twice a
    # second and share it, so 30 visitors cost what one does.
    lock = threading.Lock()
    cache: list[Any] = [0.0, None]

    def refresh() -> tuple[Any, ...]:
        with lock:
            if cache[1] is None or time.monotonic() - cache[0] > max_age_s:
                cache[1] = build()
                cache[0] = time.monotonic()
            return cache[1]  # type: ignore[no-any-return]

    def build() -> tuple[Any, ...]:
        labels = arena.labels()
        anatomy = {n: arena.anatomy(n) for n in SLOT_NAMES}  # once per tick: it reads the config and log
        return (
            _card(arena, "A", anatomy["A"][1]),
            _card(arena, "B", anatomy["B"][1]),
            charts.memory_figure(list(arena.samples), labels),
            charts.latency_figure(list(arena.history), labels),
            charts.anatomy_figure({labels[n]: parts for n, (parts, _) in anatomy.items() if parts}),
            charts.kv_usage_figure(list(arena.kv_usage), labels),
            cards.history_rows(arena.history),
        )

    return refresh


def _compare_handler(arena: Arena):  # type: ignore[no-untyped-def]
    def compare(
        prompt: str,
        mode: str,
        chat: bool,
        temperature: float,
        top_p: float,
        max_tokens: float,
        seed: float | None,
        request: gr.Request,
    ) -> Iterator[tuple[str, str, str, str, str]]:
        try:
            params = GenerationParams(
                max_tokens=int(max_tokens or 0),
                temperature=float(temperature),
                top_p=float(top_p),
                seed=None if seed is None else int(seed),
                chat=bool(chat),
            )
            updates = arena.compare(prompt or "", params, mode, visitor=visitor_key(request))
            yield "", "", "", "", "… sending to " + (" then ".join(SLOT_NAMES) if mode == "fair" else "both")
            for p in updates:
                a, b = p.answers.get("A"), p.answers.get("B")
                note = "" if p.done else "… streaming…"
                if p.done:
                    errors = [f"**{x.slot}:** {x.error}" for x in (a, b) if x and x.error]
                    note = ("✕ " + " · ".join(errors)) if errors else ""
                    if p.run_id is None:  # the answers stand; say that the history lacks them
                        note = " · ".join(filter(None, (note, "⚠ " + (arena.store_error or "the run was not saved"))))
                yield (
                    p.texts.get("A", ""),
                    p.texts.get("B", ""),
                    cards.answer_figures(a),
                    cards.answer_figures(b),
                    note,
                )
        except (SpecError, ValueError, OverflowError) as exc:
            yield "", "", "", "", f"✕ {exc}"

    return compare
