"""The Gradio "Quantize" tab: quantize a model with llm-compressor, watch it, cancel it, and load the
result beside its base model."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import gradio as gr

from playground.arena.core import Arena
from playground.arena.defaults import ASSETS
from playground.measure.quant_plan import (
    DEFAULT_SAMPLES,
    DEFAULT_SEQ_LEN,
    SCHEMES,
    QuantError,
    QuantRequest,
)
from playground.measure.specs import SpecError

CANCEL_WAIT_S = 30.0


def quantize_tab(arena: Arena) -> None:
    """Add the quantize form, its progress, Cancel and "compare with the base" to the Blocks being built."""
    gr.Markdown((ASSETS / "quantize.md").read_text())
    default_model = arena.slot("A").spec.model
    with gr.Row():
        model = gr.Textbox(default_model, label="Model (Hugging Face id, local folder, or tiny/bf16)", scale=3)
        scheme = gr.Radio(list(SCHEMES), value="W4A16", label="Scheme", scale=2)
    with gr.Accordion("Calibration and output", open=False):
        with gr.Row():
            calib = gr.File(label="Calibration text (default: the bundled assets/calibration.txt)", type="filepath")
            with gr.Column():
                samples = gr.Number(DEFAULT_SAMPLES, label="Samples (at most)", precision=0, minimum=1)
                seq_len = gr.Number(DEFAULT_SEQ_LEN, label="Tokens per sample", precision=0, minimum=16)
                group = gr.Number(0, label="W4A16 group size (0: 128 where the widths allow)", precision=0)
        out = gr.Textbox("", label="Output folder (empty: data/quantized/MODEL-SCHEME)")
    with gr.Row():
        check = gr.Button("Check memory and shapes", variant="secondary")
        run = gr.Button("Quantize ▶", variant="primary")
        cancel = gr.Button("Cancel", variant="stop")
    message = gr.Markdown()
    with gr.Row():
        result = gr.Textbox(label="Result folder", interactive=False, scale=3)
        slot = gr.Radio(["B", "A"], value="B", label="Load it into slot", scale=1)
        load = gr.Button("Compare with the base ▶", variant="primary", scale=1)
    card = gr.Markdown()
    inputs = [model, scheme, calib, samples, seq_len, group, out]
    check.click(_check_handler(arena), inputs, message, api_name="check_quantize")
    # No queue limit: a second click must hear "already running" at once (the quantizer allows one).
    event = run.click(
        _quantize_handler(arena), inputs, [message, result, card], api_name="quantize", concurrency_limit=None
    )
    cancel.click(_cancel_handler(arena), None, message, api_name="cancel_quantize", cancels=[event])
    load.click(_load_handler(arena), [result, model, slot], message, api_name="load_quantized")


def _request(
    model: str, scheme: str, calib: str | None, samples: Any, seq_len: Any, group: Any, out: str
) -> QuantRequest:
    try:
        group_size = int(group or 0)
        return QuantRequest(
            model=(model or "").strip(),
            scheme=scheme or "",
            out=(out or "").strip(),
            calib=calib or None,
            samples=int(samples or 0),
            seq_len=int(seq_len or 0),
            group_size=None if group_size < 0 else group_size,
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise QuantError(f"not a number: {exc}") from exc


def _plan_text(arena: Arena, request: QuantRequest) -> str:
    prepared = arena.quantizer.prepare(request)
    plan = prepared.plan
    peak = plan.peak
    vram = f" · GPU {peak.vram_bytes / 1e9:,.2f} GB" if peak.vram_bytes is not None else ""
    group = ""
    if plan.scheme.grouped:
        group = f" · group size {plan.group_size}" if plan.group_size else " · one scale per output channel"
    lines = [
        f"**{plan.scheme.name}**{group}: {plan.scheme.title} (llm-compressor {plan.scheme.modifiers})",
        f"weights {plan.before_bytes / 1e6:,.1f} MB → **{plan.after_bytes / 1e6:,.1f} MB** predicted · "
        f"peak memory of the quantizer: host {peak.ram_bytes / 1e9:,.2f} GB{vram} (predicted from config.json; fits)",
        f"writes `{prepared.out}`" + (f" · calibration: {prepared.calib_label}" if prepared.calib else ""),
        f"vLLM runs it on: {plan.scheme.runs_on}",
    ]
    lines += [f"⚠ {n}" for n in plan.notes]
    return "\n\n".join(lines)


def _check_handler(arena: Arena):  # type: ignore[no-untyped-def]
    def check_quantize(*values: Any) -> str:
        try:
            return _plan_text(arena, _request(*values))
        except QuantError as exc:
            return f"✕ {exc}"

    return check_quantize


def _quantize_handler(arena: Arena):  # type: ignore[no-untyped-def]
    lock = threading.Lock()

    def quantize(
        model: str,
        scheme: str,
        calib: str | None,
        samples: Any,
        seq_len: Any,
        group: Any,
        out: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's way to ask for a progress bar
    ) -> tuple[str, str, str]:
        try:
            request = _request(model, scheme, calib, samples, seq_len, group, out)
            if not lock.acquire(blocking=False):
                return "✕ a quantization is already running; wait for it or cancel it", "", ""
            try:
                outcome = arena.quantizer.run(
                    request,
                    on_progress=lambda p, s: progress(p.fraction, desc=f"{p.text} · {s:.0f} s"),
                )
            finally:
                lock.release()
        except QuantError as exc:
            return f"✕ {exc}", "", ""
        if outcome.state != "done":
            mark = "○" if outcome.state == "cancelled" else "✕"
            return f"{mark} {outcome.message}", "", ""
        readme = Path(outcome.out) / "README.md"
        text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
        done = f"● {outcome.message}\n\nClick **Compare with the base** to load it beside `{model}`."
        return done, str(outcome.out), text

    return quantize


def _cancel_handler(arena: Arena):  # type: ignore[no-untyped-def]
    def cancel_quantize() -> str:
        if not arena.quantizer.cancel():
            return "No quantization is running."
        return "○ Cancelled: the quantizer's processes were stopped and no folder was left."

    return cancel_quantize


def _load_handler(arena: Arena):  # type: ignore[no-untyped-def]
    def load_quantized(result: str, base: str, slot: str) -> str:
        try:
            arena.quantized.compare_with_base((result or "").strip(), (base or "").strip(), slot=slot or "B")
        except SpecError as exc:
            return f"✕ {exc}"
        other = "A" if slot == "B" else "B"
        return (
            f"◐ starting: slot {slot} gets `{Path(result).name}`, slot {other} the base `{base}`; the engine "
            "cards above show their progress, then use the Compare and Quality tabs."
        )

    return load_quantized
