"""The session's "memory vs speed vs quality" picture: one row per engine, from figures the core
already measured (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from playground.measure.metrics import median
from playground.measure.quality import QualityReport
from playground.measure.records import RequestRecord

COLUMNS = [
    "engine",
    "weights (GiB)",
    "weights source",
    "KV cache (tokens)",
    "decode tok/s (median)",
    "requests",
    "agreement with the other",
    "perplexity",
]


@dataclass(frozen=True)
class EngineSummary:
    """One engine's figures for the session."""

    slot: str
    label: str
    weights_gib: float | None
    weights_source: str
    kv_tokens: int | None
    decode_tok_s: float | None  # median over this engine's successful requests
    requests: int
    agreement: float | None  # latest quality run, the same for both engines
    perplexity: float | None  # latest quality run with a reference text


def decode_speeds(history: Sequence[RequestRecord], slot: str) -> list[float]:
    """Decode rates of a slot's successful requests."""
    return [
        r.timing.decode_tok_s for r in history if r.slot == slot and not r.error and r.timing.decode_tok_s is not None
    ]


def summarize(
    labels: Mapping[str, str],
    weights: Mapping[str, tuple[float | None, str]],
    kv_tokens: Mapping[str, int | None],
    history: Sequence[RequestRecord],
    quality: Sequence[QualityReport],
) -> list[EngineSummary]:
    """Rows for both slots: weights (and where that figure came from), KV cache, speed, quality."""
    last = quality[-1] if quality else None
    last_ppl = next((q.perplexity for q in reversed(quality) if q.perplexity is not None), None)
    rows = []
    for slot, label in labels.items():
        speeds = [
            r.timing.decode_tok_s
            for r in history
            if r.slot == slot and not r.error and r.timing.decode_tok_s is not None
        ]
        ppl = None if last_ppl is None else (last_ppl.a if slot == "A" else last_ppl.b)
        gib, source = weights.get(slot, (None, ""))
        rows.append(
            EngineSummary(
                slot,
                label,
                gib,
                source,
                kv_tokens.get(slot),
                median(speeds),
                len(speeds),
                None if last is None else last.divergence.agreement,
                ppl,
            )
        )
    return rows


def summary_rows(rows: Sequence[EngineSummary]) -> list[list[object]]:
    """Table cells, "–" where a figure has not been measured yet."""

    def fmt(value: float | None, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    return [
        [
            r.label,
            fmt(r.weights_gib, ".3f"),
            r.weights_source or "–",
            "–" if r.kv_tokens is None else f"{r.kv_tokens:,}",
            fmt(r.decode_tok_s, ",.1f"),
            r.requests,
            "–" if r.agreement is None else f"{r.agreement * 100:.1f} %",
            fmt(r.perplexity, ".3f"),
        ]
        for r in rows
    ]
