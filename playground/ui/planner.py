"""The Gradio "What fits where" tab: each method's predicted weights, KV cache and decode ceiling."""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.arena.defaults import ASSETS
from playground.engines.model_config import load_config
from playground.measure.gpus import present_gpu
from playground.measure.memory_math import ModelShape
from playground.measure.planner import GPUS, PRESETS, Gpu, plan_gpus
from playground.measure.specs import DeviceInfo

COLUMNS = [
    "method",
    "bits",
    "GPUs",
    "weights GB",
    "per GPU GB",
    "fits",
    "KV-cache tokens",
    "concurrent requests",
    "decode ceiling tok/s",
]


def planner_tab(device: DeviceInfo, *, presets_only: bool = False) -> None:
    """Add the planner's inputs, table and events to the Blocks being built.

    `presets_only` (locked instances): no local folders or hub ids, only the listed models."""
    gpus = list(GPUS)
    here = None
    if device.kind == "cuda":
        here = f"this GPU: {device.name}"
        gpus.insert(0, here)
    gr.Markdown((ASSETS / "planner.md").read_text())
    with gr.Row():
        model = gr.Dropdown(
            list(PRESETS),
            value="meta-llama/Llama-2-70b-hf",
            allow_custom_value=not presets_only,
            label="Model" if presets_only else "Model (preset, local folder, or hub id: config.json only)",
        )
        gpu = gr.Dropdown(gpus, value=here or "H100-80GB", label="GPU")
        context = gr.Number(4096, label="context length (tokens)", precision=0)
        util = gr.Slider(0.1, 0.95, value=0.9, step=0.05, label="gpu_memory_utilization")
        count = gr.Dropdown(
            [1, 2, 4, 8],
            value=max(1, min(device.count, 8)) if device.kind == "cuda" else 1,
            label="GPUs of this kind (at most; tensor parallel)",
        )
    handler = _plan_handler(device, presets_only)
    first = handler(model.value, gpu.value, context.value, util.value, count.value)
    table = gr.Dataframe(first, headers=COLUMNS, interactive=False)
    inputs: list[Any] = [model, gpu, context, util, count]
    model.change(handler, inputs, table, api_name="plan")
    for comp in inputs[1:]:
        comp.change(handler, inputs, table, api_visibility="private")


def _gpu(name: str, device: DeviceInfo) -> Gpu:
    if name in GPUS:
        return GPUS[name]
    # The present GPU: its own NVML total; bandwidth and the driver's reserve from the closest known kind.
    return present_gpu(device.name, device.total_bytes)


def _plan_handler(device: DeviceInfo, presets_only: bool = False):  # type: ignore[no-untyped-def]
    def run(model: str, gpu: str, context: float, util: float, gpus: float = 1) -> list[list[object]]:
        if presets_only and model not in PRESETS:
            raise gr.Error(f"this instance plans only its listed models: {', '.join(PRESETS)}")
        if gpu not in GPUS and not (device.kind == "cuda" and gpu == f"this GPU: {device.name}"):
            raise gr.Error(f"unknown GPU {gpu!r}; choose one of: {', '.join(GPUS)}")
        try:
            shape = ModelShape.from_config(load_config(model))
        except Exception as exc:  # no such file, no network, not a Llama-style config
            raise gr.Error(f"could not read {model}'s config.json ({type(exc).__name__}: {exc})") from exc
        count = max(1, min(int(gpus or 1), 8))
        rows = plan_gpus(
            shape, _gpu(gpu, device), max_gpus=count, context_len=max(int(context or 1), 1), utilization=float(util)
        )
        return [
            [
                r.method,
                r.bits,
                r.gpus,
                round(r.weights_gb, 2),
                round(r.weights_per_gpu_gb, 2),
                "yes" if r.fits else "no",
                f"{r.kv_tokens:,}",
                round(r.max_concurrency, 1),
                round(r.decode_ceiling_tok_s, 1),
            ]
            for r in rows
        ]

    return run
