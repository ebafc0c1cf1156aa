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
    "decode tok/s (median, ran alone)",
    "requests (alone / shared)",
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
    decode_tok_s: float | None  # median over this engine's successful requests that ran alone
    requests: int  # successful requests that ran alone: the engine's own speed
    agreement: float | None  # latest quality run, the same for both engines
    perplexity: float | None  # latest quality run with a reference text
    shared: int = 0  # successful requests that shared the engine with others (not in the median)


def decode_speeds(history: Sequence[RequestRecord], slot: str, *, alone: bool = True) -> list[float]:
    """Decode rates of a slot's successful requests that ran alone on the engine (their speed is the
    engine's own), or of those that shared it (`alone=False`)."""
    return [
        r.timing.decode_tok_s
        for r in history
        if r.slot == slot
        and not r.error
        and r.timing.decode_tok_s is not None
        and r.shared_with is not None
        and (r.shared_with == 0) == alone
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
        speeds = decode_speeds(history, slot)
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
                len(decode_speeds(history, slot, alone=False)),
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
            fmt(r.decode_tok_s, ",.1f") if r.requests or not r.shared else "none ran alone",
            f"{r.requests} / {r.shared}",
            "–" if r.agreement is None else f"{r.agreement * 100:.1f} %",
            fmt(r.perplexity, ".3f"),
        ]
        for r in rows
    ]
