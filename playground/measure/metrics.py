"""Request timing figures from per-token arrival timestamps (pure arithmetic, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

# A token that reaches the client less than this long after the previous one came in the same
# burst: on a busy machine tokens are buffered and arrive together (docs/NOTES.md).
BURST_GAP_S = 0.0005
BURST_SHARE = 0.25


@dataclass(frozen=True)
class TokenChunk:
    """One streamed chunk as the client saw it: arrival time (perf_counter s), text, token count."""

    t: float
    text: str
    tokens: int = 1


@dataclass(frozen=True)
class RequestTiming:
    """Latency and throughput of one streamed request."""

    ttft_ms: float | None
    decode_tok_s: float | None
    itl_p50_ms: float | None
    itl_p95_ms: float | None
    e2e_ms: float
    prompt_tokens: int | None
    output_tokens: int
    bursty: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between order statistics."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float | None:
    """The 50th percentile, or None for no values."""
    return percentile(values, 50)


def inter_token_gaps(chunks: Sequence[TokenChunk]) -> list[float]:
    """Per-token gaps in seconds: a chunk carrying k tokens spreads its gap over those k tokens."""
    gaps: list[float] = []
    for prev, cur in zip(chunks, chunks[1:], strict=False):
        k = max(cur.tokens, 1)
        gaps.extend([(cur.t - prev.t) / k] * k)
    return gaps


def request_timing(
    sent_at: float,
    chunks: Sequence[TokenChunk],
    finished_at: float,
    *,
    prompt_tokens: int | None = None,
    output_tokens: int | None = None,
) -> RequestTiming:
    """Compute TTFT, decode rate, ITL p50/p95 and end-to-end time for one request.

    `output_tokens` should come from the server's usage report; without it the chunks' own token
    counts are summed. Decode rate counts tokens after the first over the first-to-last span.
    """
    tokens = [c for c in chunks if c.tokens > 0 or c.text]
    counted = sum(max(c.tokens, 0) for c in tokens)
    out = output_tokens if output_tokens is not None else counted
    e2e_ms = (finished_at - sent_at) * 1000
    if not tokens:
        return RequestTiming(None, None, None, None, e2e_ms, prompt_tokens, out)
    first, last = tokens[0], tokens[-1]
    ttft_ms = (first.t - sent_at) * 1000
    span = last.t - first.t
    after_first = out - max(first.tokens, 1)
    decode = after_first / span if span > 0 and after_first > 0 else None
    gaps = inter_token_gaps(tokens)
    itl50, itl95 = percentile(gaps, 50), percentile(gaps, 95)
    bursty = bool(gaps) and sum(g < BURST_GAP_S for g in gaps) / len(gaps) > BURST_SHARE
    return RequestTiming(
        ttft_ms=ttft_ms,
        decode_tok_s=decode,
        itl_p50_ms=None if itl50 is None else itl50 * 1000,
        itl_p95_ms=None if itl95 is None else itl95 * 1000,
        e2e_ms=e2e_ms,
        prompt_tokens=prompt_tokens,
        output_tokens=out,
        bursty=bursty,
    )
