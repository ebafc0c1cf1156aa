"""Text the shells show: engine cards, per-answer figures and history rows (pure formatting of
figures the core computed)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from playground.measure.anatomy import ROUNDED_GIB, WeightsCheck
from playground.measure.prometheus import EngineMetrics
from playground.measure.quality import QualityReport
from playground.measure.records import CompareRun, EngineAnswer, EngineStatus, RequestRecord
from playground.measure.room import RoomState, shared_note
from playground.measure.specs import EngineSpec

STATE_BADGES = {"ready": "● ready", "starting": "◐ starting", "failed": "✕ failed", "stopped": "○ stopped"}
HISTORY_COLUMNS = [
    "#",
    "engine",
    "mode",
    "TTFT ms",
    "decode tok/s",
    "ITL p50 ms",
    "ITL p95 ms",
    "e2e ms",
    "prompt tok",
    "output tok",
    "load",
    "note",
]


COMPILE_CACHE = {
    "warm": " · compile cache **warm** (vLLM loaded its compiled graphs from an earlier start)",
    "cold": " · compile cache **cold** (vLLM compiled and saved its graphs: the next start is quicker)",
}


def _num(value: float | None, fmt: str = "{:,.0f}", none: str = "–") -> str:
    return none if value is None else fmt.format(value)


def engine_card(
    label: str,
    spec: EngineSpec,
    status: EngineStatus,
    metrics: EngineMetrics,
    memory_mb: float | None,
    memory_source: str,
    metrics_error: str = "",
    extra: Sequence[str] = (),
) -> str:
    """Markdown for one slot: what it runs, where its startup stands, memory and KV cache."""
    badge = STATE_BADGES.get(status.state, status.state)
    where = f"attached to `{spec.endpoint}`" if spec.attached else f"`{spec.model}`"
    quant = spec.quantization if spec.quantization not in ("", "auto") else "auto (from checkpoint)"
    lines = [f"### {label}", f"{where} · quantization **{quant}** · dtype {spec.dtype}"]
    if spec.note:
        lines.append(spec.note)
    if status.state == "starting":
        lines.append(f"{badge} — **{status.phase}** · {status.elapsed_s:.0f} s")
    elif status.state == "ready":
        took = f" in {status.startup_s:.0f} s" if status.startup_s else ""
        lines.append(f"{badge}{took}{COMPILE_CACHE.get(status.compile_cache or '', '')}")
    elif status.state == "failed":
        lines.append(f"{badge}: {status.message}")
        if status.log_path:
            lines.append(f"log: `{status.log_path}`")
    else:
        lines.append(badge if status.state != "stopped" or status.phase == "stopped" else "○ not started")
    if status.state == "ready":
        mem = "not seen by the monitor" if memory_mb is None else f"{memory_mb / 1000:,.2f} GB"
        figures = [f"memory {mem} ({memory_source.split(' (')[0]})"]
        if status.weights_gib is not None and status.weights_gib > ROUNDED_GIB:
            figures.append(f"weights {status.weights_gib:.2f} GiB (vLLM log)")
        elif status.weights_gib is not None:
            figures.append(f"weights under {ROUNDED_GIB} GiB (vLLM's log rounds to {status.weights_gib:.2f})")
        if metrics.kv_cache_tokens is not None:
            kv_bytes = "" if metrics.kv_cache_bytes is None else f", {metrics.kv_cache_bytes / 2**30:.2f} GiB"
            figures.append(f"KV cache {metrics.kv_cache_tokens:,} tokens{kv_bytes}")
        if metrics.kv_cache_usage is not None:
            figures.append(f"KV in use {metrics.kv_cache_usage * 100:.1f} %")
        lines.append(" · ".join(figures))
    lines += list(extra)
    lines += [f"⚠ {note}" for note in status.notes]
    if metrics_error:
        lines.append(f"⚠ {metrics_error}")
    return "\n\n".join(lines)


def answer_figures(answer: EngineAnswer | None) -> str:
    """Markdown figures under one answer pane."""
    if answer is None:
        return ""
    if answer.error and (answer.timing is None or not answer.text):
        return f"✕ {answer.error}"
    t = answer.timing
    assert t is not None
    parts = [
        f"TTFT **{_num(t.ttft_ms)} ms**",
        f"decode **{_num(t.decode_tok_s, '{:,.1f}')} tok/s**",
        f"ITL p50/p95 {_num(t.itl_p50_ms, '{:.1f}')}/{_num(t.itl_p95_ms, '{:.1f}')} ms",
        f"end-to-end {_num(t.e2e_ms)} ms",
        f"tokens {_num(t.prompt_tokens)} in → {t.output_tokens} out",
    ]
    text = " · ".join(parts)
    if answer.finish_reason == "length":
        text += " · stopped at the length limit (max_tokens or the context)"
    text += f"\n\n{_load_line(answer.shared_with)}"
    if t.bursty:
        text += (
            "\n\n⚠ tokens arrived in bursts (a busy machine buffers them): one request is not a speed "
            "measurement; compare medians over several runs"
        )
    if answer.error:
        text += f"\n\n✕ {answer.error}"
    return text


def history_rows(records: Sequence[RequestRecord]) -> list[list[object]]:
    """One row per request, newest first, for the history table."""
    rows: list[list[object]] = []
    for r in reversed(records):
        t = r.timing
        rows.append(
            [
                r.request_no,
                r.label,
                r.mode,
                _num(t.ttft_ms),
                _num(t.decode_tok_s, "{:,.1f}"),
                _num(t.itl_p50_ms, "{:.1f}"),
                _num(t.itl_p95_ms, "{:.1f}"),
                _num(t.e2e_ms),
                _num(t.prompt_tokens),
                t.output_tokens,
                "alone" if r.shared_with == 0 else ("–" if r.shared_with is None else f"shared ({r.shared_with})"),
                r.error or ("bursty" if t.bursty else ""),
            ]
        )
    return rows


def highlighted_tokens(pieces: Sequence[str], first_divergence: int | None) -> list[tuple[str, str | None]]:
    """Token pieces for gr.HighlightedText: the first differing token and what follows it marked."""
    out: list[tuple[str, str | None]] = []
    for i, piece in enumerate(pieces):
        label = None
        if first_divergence is not None and i >= first_divergence:
            label = "first difference" if i == first_divergence else "after"
        out.append((piece, label))
    return out


def quality_summary(report: QualityReport) -> str:
    """Markdown with agreement, first divergence, mean KL and perplexity."""
    d = report.divergence
    where = "the answers agree throughout" if d.first_divergence is None else f"token {d.first_divergence}"
    kl = "–" if report.kl_mean is None else f"{report.kl_mean:.4f} nats/token"
    lines = [
        f"**Agreement** {d.agreement * 100:.1f} % of {d.tokens_compared} tokens · **first difference** {where}",
        f"**Mean KL(A‖B)**, teacher-forced: {kl} (top-{report.top_k} lower bound)",
    ]
    if (p := report.perplexity) is not None:
        diff = "" if p.a is None or p.b is None else f" · B − A = {p.b - p.a:+.3f} ({(p.b / p.a - 1) * 100:+.2f} %)"
        lines.append(
            f"**Perplexity** A {_num(p.a, '{:.3f}')} · B {_num(p.b, '{:.3f}')}{diff} · "
            f"{p.tokens_scored:,} tokens scored, window {p.window}, stride {p.stride}"
        )
    lines += [f"⚠ {n}" for n in report.notes]
    return "\n\n".join(lines)


def loaded_lines(kernel: str | None, loaded: str | None, check: WeightsCheck | None) -> list[str]:
    """What the engine really loaded: its quantization method, linear kernel, weights vs prediction."""
    lines = []
    method = "none (unquantized)" if loaded in ("None", "none") else loaded
    bits = [f"vLLM loaded quantization **{method}**" if loaded else "", f"kernel **{kernel}**" if kernel else ""]
    if any(bits):
        lines.append(" · ".join(b for b in bits if b))
    if check is not None:
        predicted = f"predicted weights {check.predicted / 2**30:.3f} GiB from config.json ({check.named})"
        if check.error is not None:
            source = f", {check.measured_source}" if check.measured_source else ""
            predicted += f", measured {check.measured / 2**30:.3f} GiB ({check.error * 100:+.1f} %{source})"  # type: ignore[operator]
        lines.append(predicted)
        if check.warning:
            lines.append(f"⚠ {check.warning}")
    if loaded == "fp8" and check is not None and check.method == "bf16":
        lines.append(FP8_ONLINE_NOTE)
    return lines


FP8_ONLINE_NOTE = (
    "FP8 online: this checkpoint is 16-bit; vLLM reads its 16-bit weights and quantizes each linear "
    'layer to FP8 as it loads. Its "Model loading took" figure is what stays on the GPU afterwards: '
    "FP8 linear weights with their scales, plus embeddings, lm_head and norms still in 16 bits (on an "
    "H200, 7B: 6.74 GiB, 3 % above that arithmetic, the rest not identified)."
)


SAVED_RUN_COLUMNS = ["run", "when", "mode", "prompt", "A", "A TTFT ms", "A tok/s", "B", "B TTFT ms", "B tok/s", "note"]


def saved_run_rows(runs: Sequence[CompareRun]) -> list[list[object]]:
    """One row per saved compare (newest first as given) for the History tab."""
    rows: list[list[object]] = []
    for run in runs:
        by_slot = {a.slot: a for a in run.answers}
        row: list[object] = [
            run.id,
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.finished_at)),
            run.mode,
            run.prompt if len(run.prompt) <= 80 else run.prompt[:79] + "…",
        ]
        for slot in ("A", "B"):
            a = by_slot.get(slot)
            t = a.timing if a else None
            row += [
                a.label if a else "–",
                _num(t.ttft_ms if t else None),
                _num(t.decode_tok_s if t else None, "{:,.1f}"),
            ]
        errors = [f"{a.slot}: {a.error}" for a in run.answers if a.error]
        row.append("; ".join(errors))
        rows.append(row)
    return rows


def _load_line(shared_with: int | None) -> str:
    """Under an answer: alone (its speed is the engine's own) or shared (vLLM batched it with others)."""
    note = shared_note(shared_with)
    if shared_with:
        return f"👥 {note}: vLLM batched them, so these figures are not the engine's speed alone"
    return f"👤 {note}" if shared_with == 0 else note


def room_panel(state: RoomState, labels: Mapping[str, str], sentence: str) -> str:
    """The room panel: who shares this instance now and what each engine runs, from the arena's counters
    and vLLM's last /metrics read."""
    rows = [
        "| engine | in flight (this app) | tokens/s (last 10 s) | vLLM's batch (running / waiting) | KV cache |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, load in state.engines.items():
        batch = "–" if load.batch is None else f"{load.batch} / {_num(load.waiting)}"
        kv = "–" if load.kv_usage is None else f"{load.kv_usage * 100:.0f} %"
        label = labels.get(name, name)
        rows.append(f"| {label} | {load.in_flight} | {load.tokens_per_s:,.0f} | {batch} | {kv} |")
    people = "1 visitor" if state.visitors == 1 else f"{state.visitors} visitors"
    head = f"**The room:** {people} in the last minute · {state.compares} compare(s) running now"
    return f"{head}\n\n" + "\n".join(rows) + f"\n\n{sentence}"
