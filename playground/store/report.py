"""Stored runs as JSON, CSV and one self-contained HTML report with the charts (pure: data in, text out)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from playground.measure import ladder
from playground.measure.records import CompareRun, EngineAnswer, MemorySample, RequestRecord, SessionInfo
from playground.views import charts

CSV_COLUMNS = (
    "run_id",
    "number",
    "time",
    "mode",
    "prompt",
    "params",
    "slot",
    "label",
    "model",
    "quantization",
    "ttft_ms",
    "decode_tok_s",
    "itl_p50_ms",
    "itl_p95_ms",
    "e2e_ms",
    "prompt_tokens",
    "output_tokens",
    "memory_mb",
    "bursty",
    "shared_with",
    "finish_reason",
    "error",
    "engine_notes",
    "text",
)


def when(t: float) -> str:
    """A time.time() value as local ISO 8601 with its UTC offset."""
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def in_order(runs: Sequence[CompareRun]) -> list[CompareRun]:
    """Runs oldest first, the order every export reads in (the store lists newest first)."""
    return sorted(runs, key=lambda r: (r.started_at, r.id))


def request_records(runs: Sequence[CompareRun]) -> list[RequestRecord]:
    """Each timed answer as the latency chart's record: the compare number within one session, else
    the run's position, so runs of several sessions do not share an x."""
    ordered = in_order(runs)
    one_session = len({r.session_id for r in ordered}) <= 1
    return [
        RequestRecord(
            r.number if one_session else i,
            r.finished_at,
            a.slot,
            a.label,
            r.mode,
            r.prompt,
            a.timing,
            a.error,
            a.shared_with,
        )
        for i, r in enumerate(ordered, 1)
        for a in r.answers
        if a.timing is not None
    ]


def engine_labels(runs: Sequence[CompareRun], sessions: Sequence[SessionInfo] = ()) -> dict[str, str]:
    """Slot -> label for the charts, from the newest run's answers, else from the sessions' engines."""
    labels: dict[str, str] = {}
    for run in in_order(runs):
        labels.update({a.slot: a.label for a in run.answers})
    if not labels:
        for session in sorted(sessions, key=lambda s: s.started_at):
            labels.update({slot: f"{slot}: {spec}" for slot, spec in session.specs.items()})
    return dict(sorted(labels.items()))


def _finite(value: Any) -> Any:
    """NaN and infinities become None, so the JSON parses everywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def answer_dict(answer: EngineAnswer) -> dict[str, Any]:
    """One answer with every figure, and the full timing (None when the request never ran)."""
    return {"slot": answer.slot, **answer.as_dict(), "timing": answer.timing.as_dict() if answer.timing else None}


def run_dict(run: CompareRun) -> dict[str, Any]:
    """One run: its settings and both answers."""
    return {
        "id": run.id,
        "session_id": run.session_id,
        "number": run.number,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "started": when(run.started_at),
        "prompt": run.prompt,
        "mode": run.mode,
        "params": run.params,
        "answers": [answer_dict(a) for a in run.answers],
    }


def sample_dict(sample: MemorySample) -> dict[str, Any]:
    """One memory sample, bytes as measured."""
    return {
        "t": sample.t,
        "engines": sample.engines,
        "device_used": sample.device_used,
        "device_total": sample.device_total,
        "source": sample.source,
        "by_gpu": sample.by_gpu,  # slot -> GPU index -> bytes (NVML); {} on the CPU
        "gpus_used": sample.gpus_used,
    }


def runs_json(
    runs: Sequence[CompareRun], samples: Sequence[MemorySample], *, sessions: Sequence[SessionInfo] = ()
) -> str:
    """Runs (oldest first), the sessions they came from and the memory series as one JSON document."""
    doc = {
        "exported": when(datetime.now().timestamp()),
        "sessions": [
            {"id": s.id, "started_at": s.started_at, "device": s.device, "specs": s.specs, "runs": s.runs}
            for s in sessions
        ],
        "runs": [run_dict(r) for r in in_order(runs)],
        "memory_samples": [sample_dict(s) for s in samples],
    }
    return json.dumps(_finite(doc), indent=2, ensure_ascii=False, allow_nan=False)


def runs_csv(runs: Sequence[CompareRun]) -> str:
    """One row per engine answer (two per run), oldest run first, with the header CSV_COLUMNS."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for run in in_order(runs):
        meta = {
            "run_id": run.id,
            "number": run.number,
            "time": when(run.started_at),
            "mode": run.mode,
            "prompt": run.prompt,
            "params": json.dumps(run.params, sort_keys=True),
        }
        for answer in run.answers:
            figures = {k: "" if v is None else v for k, v in answer.as_dict().items()}
            notes = " | ".join(answer.engine_notes)
            writer.writerow({**meta, **figures, "slot": answer.slot, "engine_notes": notes, "text": answer.text})
    return out.getvalue()


# -- HTML ---------------------------------------------------------------------------------------------
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#111827}
h1{margin-bottom:.2rem} header p,header dl{color:#4b5563;margin:.2rem 0}
dt{font-weight:600;float:left;margin-right:.5rem}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:1rem;margin:1.5rem 0}
article{border-top:1px solid #e5e7eb;padding:1rem 0} .settings{color:#4b5563;font-size:.9rem}
pre{white-space:pre-wrap;word-break:break-word;background:#f9fafb;padding:.6rem;border-radius:6px;margin:.4rem 0}
.answers{display:grid;grid-template-columns:1fr 1fr;gap:1rem} .error{color:#b91c1c}
table{border-collapse:collapse;font-size:.85rem} td{padding:.1rem .6rem .1rem 0} td:first-child{color:#6b7280}
.slot-A h3{color:#2563eb} .slot-B h3{color:#ea580c} .empty{color:#6b7280;font-style:italic}
@media (max-width:800px){.charts,.answers{grid-template-columns:1fr}}
"""


def _shown(t: float) -> str:
    return when(t).replace("T", " ")


def _num(value: float | int | None, unit: str = "", digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}{unit}"


def _figures(answer: EngineAnswer) -> list[tuple[str, str]]:
    t = answer.timing.as_dict() if answer.timing else {}
    rows = [
        ("time to first token", _num(t.get("ttft_ms"), " ms")),
        ("decode", _num(t.get("decode_tok_s"), " tok/s")),
        ("inter-token p50 / p95", f"{_num(t.get('itl_p50_ms'), ' ms', 2)} / {_num(t.get('itl_p95_ms'), ' ms', 2)}"),
        ("end to end", _num(t.get("e2e_ms"), " ms")),
        ("tokens in / out", f"{_num(t.get('prompt_tokens'), digits=0)} / {_num(t.get('output_tokens'), digits=0)}"),
        ("memory", _num(answer.memory_mb, " MB", 0)),
        ("finish reason", answer.finish_reason or "—"),
    ]
    if t.get("bursty"):
        rows.append(("note", "tokens arrived in bursts (a busy machine buffers them): compare medians over runs"))
    rows.extend(("engine note", note) for note in answer.engine_notes)
    return rows


def _answer_html(answer: EngineAnswer) -> str:
    table = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in _figures(answer))
    error = f'<p class="error">{escape(answer.error)}</p>' if answer.error else ""
    text = f"<pre>{escape(answer.text)}</pre>" if answer.text or not answer.error else ""
    return (
        f'<div class="answer slot-{escape(answer.slot)}"><h3>{escape(answer.label)}</h3>'
        f'<p class="settings">{escape(answer.model)} · {escape(answer.quantization)}</p>'
        f"<table>{table}</table>{error}{text}{_code_html(answer)}</div>"
    )


def _code_html(answer: EngineAnswer) -> str:
    """The engine as code to run yourself, folded (the same text as the card and the CLI's JSON)."""
    blocks = [
        (title, code)
        for title, code in (
            ("vllm serve", answer.vllm_serve),
            ("Python (vllm.LLM)", answer.python),
            ("made with llm-compressor", answer.llmcompressor),
        )
        if code
    ]
    if not blocks:
        return ""
    inner = "".join(f'<p>{escape(t)}</p><pre class="code">{escape(c)}</pre>' for t, c in blocks)
    return f'<details class="run-yourself"><summary>Run this yourself</summary>{inner}</details>'


def _run_html(run: CompareRun) -> str:
    settings = " · ".join(f"{k} {v}" for k, v in run.params.items())
    took = run.finished_at - run.started_at
    return (
        f'<article id="run-{run.id}"><h2>Compare #{run.number} · {escape(_shown(run.started_at))}</h2>'
        f'<p class="settings">{escape(run.mode)} mode · {escape(settings)} · {took:.1f} s · run {run.id}</p>'
        f'<pre class="prompt">{escape(run.prompt)}</pre>'
        f'<div class="answers">{"".join(_answer_html(a) for a in run.answers)}</div></article>'
    )


def _header(title: str, runs: list[CompareRun], sessions: Sequence[SessionInfo]) -> str:
    span = f"{len(runs)} run{'s' * (len(runs) != 1)}"
    if runs:
        span += f" from {_shown(runs[0].started_at)} to {_shown(runs[-1].finished_at)}"
    items = [("Exported", _shown(datetime.now().timestamp())), ("Runs", span)]
    items += [("Device", d) for d in dict.fromkeys(s.device for s in sessions)]
    engines = {(a.slot, a.label, a.model, a.quantization) for r in runs for a in r.answers}
    items += [("Engine", f"{label} ({model}, {quant})") for _, label, model, quant in sorted(engines)]
    if not engines:
        items += [("Engine", f"{slot}: {spec}") for s in sessions for slot, spec in s.specs.items()]
    listing = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in items)
    return f"<header><h1>{escape(title)}</h1><dl>{listing}</dl></header>"


def runs_html(
    runs: Sequence[CompareRun],
    samples: Sequence[MemorySample],
    title: str,
    *,
    sessions: Sequence[SessionInfo] = (),
    ladder_rows: Sequence[ladder.LadderRow] = (),
    baseline: str = "",
) -> str:
    """One HTML file that opens offline: header, memory and latency charts, the session's ladder (if
    one ran), then every run in full."""
    ordered = in_order(runs)
    labels = engine_labels(ordered, sessions)
    figures = [charts.memory_figure(samples, labels), charts.latency_figure(request_records(ordered), labels)]
    if ladder_rows:
        figures.append(charts.ladder_figure(ladder_rows, ladder.best_tradeoffs(ladder_rows)))
    # plotly.js is inlined once, with the first chart; the second one uses it.
    plots = "".join(
        f"<div>{fig.to_html(full_html=False, include_plotlyjs=i == 0, config={'displaylogo': False})}</div>"
        for i, fig in enumerate(figures)
    )
    body = "".join(_run_html(r) for r in ordered) or '<p class="empty">No runs in this export.</p>'
    if ladder_rows:
        body = _ladder_html(ladder_rows, baseline) + body
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'{_header(title, ordered, sessions)}<section class="charts">{plots}</section>'
        f"<section>{body}</section></body></html>\n"
    )


def _ladder_html(rows: Sequence[ladder.LadderRow], baseline: str) -> str:
    """The ladder table as the tab shows it."""
    head = "".join(f"<th>{escape(c)}</th>" for c in ladder.COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
        for row in ladder.table_rows(rows, baseline)
    )
    title = f"<h2>Quantization ladder (baseline: {escape(baseline)})</h2>"
    return f'<article class="ladder">{title}<table><tr>{head}</tr>{body}</table></article>'
