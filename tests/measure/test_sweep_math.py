"""The sweep's arithmetic and verdicts on hand-computed inputs (pure: no engine)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest

from playground.engines.client import request_body
from playground.measure.generation import GenerationParams
from playground.measure.metrics import TokenChunk
from playground.measure.sweep import (
    COLUMNS,
    EngineSweep,
    SweepResult,
    SweepSettings,
    aggregate_level,
    as_json,
    crossover,
    default_settings,
    fixed_length_prompt,
    level_rows,
    parse_levels,
)


@dataclass(frozen=True)
class Done:
    sent_at: float
    chunks: Sequence[TokenChunk]
    finished_at: float
    output_tokens: int | None
    error: str = ""
    prompt_tokens: int | None = 5


def throughputs(slot: str, label: str, values: dict[int, float | None]) -> EngineSweep:
    """An engine whose levels carry only an output throughput, for the verdict tests."""
    levels = tuple(replace(aggregate_level(c, []), output_tok_s=v) for c, v in values.items())
    return EngineSweep(slot, f"{slot}: {label}", levels)


def test_one_request() -> None:
    done = Done(0.0, [TokenChunk(0.1, "a"), TokenChunk(0.2, "b"), TokenChunk(0.4, "c")], 0.5, 3)
    lv = aggregate_level(1, [done], kv_cache_peak=0.25, memory_peak_mb=100.0)
    assert lv.output_tok_s == pytest.approx(6.0) and lv.requests_s == pytest.approx(2.0)
    assert lv.ttft_p50_ms == pytest.approx(100) and lv.ttft_p95_ms == pytest.approx(100)
    # Gaps 0.1 s and 0.2 s: p50 halfway, p95 = 0.1 + 0.95 * 0.1.
    assert lv.itl_p50_ms == pytest.approx(150) and lv.itl_p95_ms == pytest.approx(195)
    assert lv.e2e_p50_ms == pytest.approx(500) and lv.e2e_p95_ms == pytest.approx(500)
    assert (lv.requests, lv.errors, lv.output_tokens, lv.duration_s) == (1, 0, 3, pytest.approx(0.5))
    assert (lv.kv_cache_peak, lv.memory_peak_mb) == (0.25, 100.0)


def test_level_with_an_error_counts_its_time_not_its_tokens() -> None:
    first = Done(0.0, [TokenChunk(0.2, "ab", 2), TokenChunk(0.4, "cd", 2)], 0.5, 4)  # gaps 0.1, 0.1
    second = Done(0.1, [TokenChunk(0.2, "a"), TokenChunk(0.3, "b")], 0.35, 2)  # gap 0.1
    failed = Done(0.05, [TokenChunk(0.3, "x")], 1.0, 1, error="the engine stopped")
    lv = aggregate_level(2, [first, second, failed])
    assert lv.duration_s == pytest.approx(1.0), "first send to last finish, the failed request included"
    assert (lv.requests, lv.errors, lv.output_tokens, lv.prompt_tokens) == (2, 1, 6, 10)
    assert lv.output_tok_s == pytest.approx(6.0) and lv.requests_s == pytest.approx(2.0)
    assert lv.ttft_p50_ms == pytest.approx(150) and lv.ttft_p95_ms == pytest.approx(195)  # 200 and 100 ms
    assert lv.itl_p50_ms == pytest.approx(100) and lv.itl_p95_ms == pytest.approx(100)
    assert lv.e2e_p50_ms == pytest.approx(375) and lv.e2e_p95_ms == pytest.approx(487.5)  # 500 and 250 ms


def test_level_without_answers_has_no_figures() -> None:
    lv = aggregate_level(4, [Done(0.0, [], 0.2, None, error="refused"), Done(0.0, [], 0.3, None, error="refused")])
    assert (lv.requests, lv.errors, lv.output_tokens) == (0, 2, 0)
    assert lv.output_tok_s is None and lv.requests_s is None and lv.ttft_p50_ms is None and lv.itl_p95_ms is None
    empty = aggregate_level(1, [])
    assert empty.duration_s == 0 and empty.output_tok_s is None and empty.e2e_p95_ms is None


def test_tokens_from_chunks_when_usage_is_missing() -> None:
    lv = aggregate_level(1, [Done(0.0, [TokenChunk(0.5, "a", 3), TokenChunk(1.0, "b", 1)], 1.0, None)])
    assert lv.output_tokens == 4 and lv.output_tok_s == pytest.approx(4.0)
    unknown = aggregate_level(1, [Done(0.0, [TokenChunk(0.5, "a")], 1.0, 1, prompt_tokens=None)])
    assert unknown.prompt_tokens is None


def test_requests_per_level() -> None:
    auto = SweepSettings(levels=(1, 4, 8, 64))
    assert [auto.requests_at(lv) for lv in auto.levels] == [8, 8, 16, 128]
    assert auto.total_requests == 160
    fixed = SweepSettings(levels=(1, 2, 8), requests_per_level=4)
    assert [fixed.requests_at(lv) for lv in fixed.levels] == [4, 4, 8], "never fewer requests than the level"


def test_settings_problems() -> None:
    assert SweepSettings().problems(4096) == []
    assert default_settings("cpu").levels == (1, 2, 4) and default_settings("cpu").problems(512) == []
    assert default_settings("cuda").levels == (1, 2, 4, 8, 16, 32, 64)
    bad = SweepSettings(levels=(0, 2), requests_per_level=-1, input_tokens=4, output_tokens=1).problems()
    assert len(bad) == 4 and "[0]" in bad[0]
    assert "exceed the engines' context of 512" in SweepSettings(input_tokens=400, output_tokens=200).problems(512)[0]
    assert "at least one" in SweepSettings(levels=()).problems()[0]


def test_parse_levels() -> None:
    assert parse_levels("4, 1,2,2") == (1, 2, 4)
    assert parse_levels("1 2 4") == (1, 2, 4)
    with pytest.raises(ValueError, match="not '0', 'x'"):
        parse_levels("0,x")
    with pytest.raises(ValueError, match="at least one"):
        parse_levels(" , ")


def test_fixed_length_prompt() -> None:
    def words(text: str) -> int:  # BOS plus one token per word
        return 1 + len(text.split())

    text = fixed_length_prompt(words, 10, "7-0:")
    assert words(text) == 10 and text.startswith("7-0:")

    def the_is_two_tokens(text: str) -> int:
        return 1 + sum(2 if w == "the" else 1 for w in text.split())

    odd = fixed_length_prompt(the_is_two_tokens, 9, "7-1:")  # " the" only reaches even counts
    assert the_is_two_tokens(odd) == 9 and " a" in odd
    with pytest.raises(ValueError, match="exactly 2 tokens"):
        fixed_length_prompt(words, 2, "a prefix that is too long")


def test_crossover_sentences() -> None:
    def pair(a: dict[int, float | None], b: dict[int, float | None]) -> str:
        return crossover(throughputs("A", "bf16", a), throughputs("B", "AWQ", b))

    assert pair({1: 100, 2: 150, 4: 200}, {1: 80, 2: 90, 4: 100}) == (
        "A (bf16) has the higher output throughput at every level measured (concurrency 1–4)."
    )
    assert pair({1: 100, 2: 150, 4: 300, 8: 500}, {1: 150, 2: 200, 4: 250, 8: 260}) == (
        "B (AWQ) has the higher output throughput up to concurrency 2; from 4 on A (bf16) wins."
    )
    assert pair({1: 100, 2: 200}, {1: 101, 2: 198}) == (
        "A (bf16) and B (AWQ) are within 2 % of each other at every level measured (concurrency 1–2)."
    )
    assert pair({1: 100, 2: 200, 4: 300}, {1: 150, 2: 201, 4: 100}) == (
        "Higher output throughput by concurrency, no single crossover: B (AWQ) at 1; "
        "even (within 2 % of each other) at 2; A (bf16) at 4."
    )
    # Levels without a figure on either side are left out; none in common is said so.
    only_one = pair({1: 100, 2: None}, {1: 50, 2: 80, 4: 90})
    assert only_one == "A (bf16) has the higher output throughput at every level measured (concurrency 1)."
    assert pair({1: 100}, {}).startswith("No concurrency level was measured by both engines")


def test_json_shape_and_table_rows() -> None:
    done = Done(0.0, [TokenChunk(0.1, "a"), TokenChunk(0.2, "b")], 0.25, 2)
    a = EngineSweep("A", "A: bf16", (aggregate_level(1, [done]),))
    b = EngineSweep("B", "B: AWQ", error="engine B is not ready (stopped)")
    result = SweepResult(SweepSettings(levels=(1,)), (a, b))
    out = as_json(result)
    assert set(out) == {"cancelled", "settings", "crossover", "engines"}
    assert out["engines"][1] == {"slot": "B", "label": "B: AWQ", "error": b.error, "notes": [], "levels": []}
    level = out["engines"][0]["levels"][0]
    assert list(level)[:7] == [
        "concurrency",
        "output_tok_s",
        "requests_s",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "itl_p50_ms",
        "itl_p95_ms",
    ]
    assert level["output_tokens"] == 2 and level["kv_cache_peak"] is None
    rows = level_rows(result)
    assert len(rows) == 1 and len(rows[0]) == len(COLUMNS)
    assert rows[0][:3] == ["A: bf16", 1, 8.0] and rows[0][9] == "–"


def test_ignore_eos_reaches_the_request_body() -> None:
    assert "ignore_eos" not in request_body("m", "p", GenerationParams())
    assert request_body("m", "p", GenerationParams(ignore_eos=True, chat=False))["ignore_eos"] is True
