"""A concurrency sweep: its settings, the figures of one level, and which engine wins where (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from playground.measure.metrics import TokenChunk, inter_token_gaps, percentile, request_timing

GPU_LEVELS = (1, 2, 4, 8, 16, 32, 64)
CPU_LEVELS = (1, 2, 4)  # two shared cores: higher levels only queue
MIN_REQUESTS = 8
MIN_INPUT_TOKENS = 16  # room for each prompt's own number (see fixed_length_prompt)
FILLERS = (" the", " a", " and")  # words repeated to pad a prompt; tried in turn until the count fits
MAX_LEVEL = 1024
TIE_SHARE = 0.02  # throughputs this close count as even
COLUMNS = [
    "engine",
    "concurrency",
    "output tok/s",
    "requests/s",
    "TTFT p50 ms",
    "TTFT p95 ms",
    "ITL p50 ms",
    "ITL p95 ms",
    "e2e p95 ms",
    "KV peak %",
    "memory peak MB",
    "errors",
]


@dataclass(frozen=True)
class SweepSettings:
    """What a sweep sends: the concurrency levels and the fixed size of every request."""

    levels: tuple[int, ...] = GPU_LEVELS
    requests_per_level: int = 0  # 0: automatic, see requests_at
    input_tokens: int = 256  # prompt tokens as the engine counts them (special tokens included)
    output_tokens: int = 256  # generated with ignore_eos, so every request does the same work

    def requests_at(self, level: int) -> int:
        """Requests sent at `level`: never fewer than the level, so that many really run at once.

        Automatic: two waves (2 × level, at least 8), so a worker that finishes early picks up new
        work and the level is not measured on one batch's ramp-up and tail alone.
        """
        if self.requests_per_level > 0:
            return max(self.requests_per_level, level)
        return max(2 * level, MIN_REQUESTS)

    @property
    def total_requests(self) -> int:
        """Requests per engine over all levels (the warm-up not counted)."""
        return sum(self.requests_at(level) for level in self.levels)

    def problems(self, max_model_len: int | None = None) -> list[str]:
        """What is wrong with these settings, each a sentence for the user; empty when fine."""
        out = []
        if not self.levels:
            out.append("give at least one concurrency level, e.g. 1,2,4,8")
        if bad := [lv for lv in self.levels if not 1 <= lv <= MAX_LEVEL]:
            out.append(f"concurrency levels must be between 1 and {MAX_LEVEL} (got {bad})")
        if self.requests_per_level < 0:
            out.append(f"requests per level must be 0 (automatic) or more (got {self.requests_per_level})")
        if self.input_tokens < MIN_INPUT_TOKENS:
            out.append(f"input tokens must be at least {MIN_INPUT_TOKENS} (got {self.input_tokens})")
        if self.output_tokens < 2:
            out.append(f"output tokens must be at least 2 so inter-token latency exists (got {self.output_tokens})")
        total = self.input_tokens + self.output_tokens
        if max_model_len is not None and total > max_model_len:
            out.append(
                f"input + output tokens ({total}) exceed the engines' context of {max_model_len} tokens: lower them"
            )
        return out


def default_settings(device_kind: str) -> SweepSettings:
    """Sensible defaults: the full 1..64 on a GPU, a short sweep of small requests on the CPU."""
    if device_kind == "cpu":
        return SweepSettings(levels=CPU_LEVELS, input_tokens=32, output_tokens=16)
    return SweepSettings()


def parse_levels(text: str) -> tuple[int, ...]:
    """`"1,2,4"` -> (1, 2, 4), sorted and without repeats; ValueError with a sentence for bad input."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if not parts:
        raise ValueError("give at least one concurrency level, e.g. 1,2,4,8")
    bad = [p for p in parts if not p.isdigit() or not 1 <= int(p) <= MAX_LEVEL]
    if bad:
        raise ValueError(
            f"concurrency levels are whole numbers from 1 to {MAX_LEVEL} separated by commas; "
            f"not {', '.join(repr(b) for b in bad)}"
        )
    return tuple(sorted({int(p) for p in parts}))


def fixed_length_prompt(count: Callable[[str], int], tokens: int, prefix: str) -> str:
    """`prefix` and a repeated word, exactly `tokens` long as `count` (the engine's tokenizer) counts.

    Each request gets its own prefix (a number) so that no two share a cached prefix in vLLM and
    every request pays for its whole prefill. ValueError when no filler word reaches the count.
    """
    for word in FILLERS:
        repeats = max(tokens - count(prefix), 0)
        tried: set[int] = set()
        while repeats not in tried:
            tried.add(repeats)
            text = prefix + word * repeats
            got = count(text)
            if got == tokens:
                return text
            repeats = max(repeats + tokens - got, 0)
    raise ValueError(f"could not build a prompt of exactly {tokens} tokens starting with {prefix!r}")


class Finished(Protocol):
    """One finished request as the client saw it (playground.engines.client.StreamOutcome has this shape)."""

    @property
    def sent_at(self) -> float: ...
    @property
    def chunks(self) -> Sequence[TokenChunk]: ...
    @property
    def finished_at(self) -> float: ...
    @property
    def output_tokens(self) -> int | None: ...
    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def error(self) -> str: ...


@dataclass(frozen=True)
class SweepLevel:
    """One engine at one concurrency: throughput over the level, latency percentiles pooled over requests."""

    concurrency: int
    output_tok_s: float | None  # output tokens of answered requests / (last finish - first send)
    requests_s: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    itl_p50_ms: float | None  # over every token gap of every answered request
    itl_p95_ms: float | None
    e2e_p50_ms: float | None
    e2e_p95_ms: float | None
    kv_cache_peak: float | None  # highest share of the KV cache in use (0..1) seen on /metrics
    memory_peak_mb: float | None  # highest engine memory sampled (10^6 bytes); None when unknown
    requests: int  # answered without error
    errors: int
    output_tokens: int
    prompt_tokens: int | None  # as the engine reported them; None when any answer lacked the count
    duration_s: float


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


def aggregate_level(
    concurrency: int,
    outcomes: Sequence[Finished],
    *,
    kv_cache_peak: float | None = None,
    memory_peak_mb: float | None = None,
) -> SweepLevel:
    """The figures of one level from its requests; failed requests count in the time, not the tokens."""
    answered = [o for o in outcomes if not o.error]
    timings = [request_timing(o.sent_at, o.chunks, o.finished_at, output_tokens=o.output_tokens) for o in answered]
    gaps = [g for o in answered for g in inter_token_gaps([c for c in o.chunks if c.tokens > 0 or c.text])]
    ttfts = [t.ttft_ms for t in timings if t.ttft_ms is not None]
    e2es = [t.e2e_ms for t in timings]
    duration = max((o.finished_at for o in outcomes), default=0.0) - min((o.sent_at for o in outcomes), default=0.0)
    tokens = sum(t.output_tokens for t in timings)
    prompts = [o.prompt_tokens for o in answered]
    rate = duration > 0 and bool(answered)
    return SweepLevel(
        concurrency=concurrency,
        output_tok_s=tokens / duration if rate else None,
        requests_s=len(answered) / duration if rate else None,
        ttft_p50_ms=percentile(ttfts, 50),
        ttft_p95_ms=percentile(ttfts, 95),
        itl_p50_ms=_ms(percentile(gaps, 50)),
        itl_p95_ms=_ms(percentile(gaps, 95)),
        e2e_p50_ms=percentile(e2es, 50),
        e2e_p95_ms=percentile(e2es, 95),
        kv_cache_peak=kv_cache_peak,
        memory_peak_mb=memory_peak_mb,
        requests=len(answered),
        errors=len(outcomes) - len(answered),
        output_tokens=tokens,
        prompt_tokens=None if None in prompts else sum(p for p in prompts if p is not None),
        duration_s=duration,
    )


@dataclass(frozen=True)
class EngineSweep:
    """One engine's levels, in the order measured; `error` says why it stopped or never started."""

    slot: str
    label: str
    levels: tuple[SweepLevel, ...] = ()
    error: str = ""
    notes: tuple[str, ...] = ()  # what the user should know but did not stop the sweep
    started_at: float = 0.0  # wall clock (time.time()), 0 when never started
    finished_at: float = 0.0

    @property
    def name(self) -> str:
        """ "A (tiny bf16)" from the slot label "A: tiny bf16"."""
        prefix = f"{self.slot}: "
        return f"{self.slot} ({self.label[len(prefix) :]})" if self.label.startswith(prefix) else self.label


@dataclass(frozen=True)
class SweepResult:
    """Every swept engine; `cancelled` when the user stopped it (finished levels are kept)."""

    settings: SweepSettings
    engines: tuple[EngineSweep, ...]
    cancelled: bool = False


def _span(levels: Sequence[int]) -> str:
    return str(levels[0]) if len(levels) == 1 else f"{levels[0]}–{levels[-1]}"


def crossover(a: EngineSweep, b: EngineSweep) -> str:
    """Which engine has the higher output throughput at which concurrency, in one sentence."""
    ours = {lv.concurrency: lv.output_tok_s for lv in a.levels if lv.output_tok_s}
    theirs = {lv.concurrency: lv.output_tok_s for lv in b.levels if lv.output_tok_s}
    common = sorted(set(ours) & set(theirs))
    if not common:
        return "No concurrency level was measured by both engines, so there is no comparison yet."
    runs: list[tuple[str, list[int]]] = []  # (leader's name or "" for even, levels)
    for level in common:
        x, y = ours[level], theirs[level]
        assert x is not None and y is not None
        leader = "" if abs(x - y) <= TIE_SHARE * max(x, y) else (a.name if x > y else b.name)
        if runs and runs[-1][0] == leader:
            runs[-1][1].append(level)
        else:
            runs.append((leader, [level]))
    even = f"within {TIE_SHARE * 100:.0f} % of each other"
    if len(runs) == 1:
        leader, levels = runs[0]
        if not leader:
            return f"{a.name} and {b.name} are {even} at every level measured (concurrency {_span(levels)})."
        return f"{leader} has the higher output throughput at every level measured (concurrency {_span(levels)})."
    if len(runs) == 2 and all(leader for leader, _ in runs):
        (first, low), (second, high) = runs
        return f"{first} has the higher output throughput up to concurrency {low[-1]}; from {high[0]} on {second} wins."
    parts = [f"{leader or 'even (' + even + ')'} at {_span(levels)}" for leader, levels in runs]
    return "Higher output throughput by concurrency, no single crossover: " + "; ".join(parts) + "."


def as_json(result: SweepResult) -> dict[str, Any]:
    """The CLI's JSON: settings, the crossover sentence, and every engine's levels."""
    engines = result.engines
    return {
        "cancelled": result.cancelled,
        "settings": asdict(result.settings),
        "crossover": crossover(*engines) if len(engines) == 2 else None,
        "engines": [
            {
                "slot": e.slot,
                "label": e.label,
                "error": e.error,
                "notes": list(e.notes),
                "levels": [asdict(lv) for lv in e.levels],
            }
            for e in engines
        ],
    }


def level_rows(result: SweepResult) -> list[list[object]]:
    """One table row per engine and level, in COLUMNS order, rounded for reading."""

    def fmt(value: float | None, digits: int = 1) -> object:
        return "–" if value is None else round(value, digits)

    rows: list[list[object]] = []
    for e in result.engines:
        for lv in e.levels:
            kv = None if lv.kv_cache_peak is None else lv.kv_cache_peak * 100
            rows.append(
                [
                    e.label,
                    lv.concurrency,
                    fmt(lv.output_tok_s),
                    fmt(lv.requests_s, 2),
                    fmt(lv.ttft_p50_ms),
                    fmt(lv.ttft_p95_ms),
                    fmt(lv.itl_p50_ms, 2),
                    fmt(lv.itl_p95_ms, 2),
                    fmt(lv.e2e_p95_ms),
                    fmt(kv, 2),
                    fmt(lv.memory_peak_mb, 0),
                    lv.errors,
                ]
            )
    return rows
