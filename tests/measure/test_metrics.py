"""Metric arithmetic against hand-computed numbers."""

from __future__ import annotations

import pytest

from playground.measure.metrics import TokenChunk, inter_token_gaps, percentile, request_timing


def test_percentile_interpolates_between_order_statistics() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == 25.0  # halfway between 20 and 30
    assert percentile(values, 95) == pytest.approx(38.5)  # pos 2.85 -> 30 + 0.85*10
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_request_timing_by_hand() -> None:
    # sent at t=10.0; tokens at 10.1, 10.2, 10.3, 10.5; stream ends at 10.6
    chunks = [TokenChunk(10.1, "a"), TokenChunk(10.2, "b"), TokenChunk(10.3, "c"), TokenChunk(10.5, "d")]
    t = request_timing(10.0, chunks, 10.6, prompt_tokens=7, output_tokens=4)
    assert t.ttft_ms == pytest.approx(100.0)
    assert t.e2e_ms == pytest.approx(600.0)
    # 3 tokens after the first over 0.4 s
    assert t.decode_tok_s == pytest.approx(7.5)
    # gaps 100, 100, 200 ms: p50 = 100, p95 = 100 + 0.9*100 = 190 (pos 1.9)
    assert t.itl_p50_ms == pytest.approx(100.0)
    assert t.itl_p95_ms == pytest.approx(190.0)
    assert (t.prompt_tokens, t.output_tokens, t.bursty) == (7, 4, False)


def test_multi_token_chunk_spreads_its_gap() -> None:
    chunks = [TokenChunk(1.0, "a", 1), TokenChunk(1.3, "bcd", 3)]
    assert inter_token_gaps(chunks) == pytest.approx([0.1, 0.1, 0.1])
    t = request_timing(0.5, chunks, 1.3, output_tokens=4)
    assert t.decode_tok_s == pytest.approx(10.0)  # 3 tokens in 0.3 s


def test_edge_cases_no_tokens_and_one_token() -> None:
    empty = request_timing(0.0, [], 0.25)
    assert empty.ttft_ms is None and empty.decode_tok_s is None and empty.itl_p50_ms is None
    assert empty.e2e_ms == pytest.approx(250.0) and empty.output_tokens == 0
    one = request_timing(0.0, [TokenChunk(0.05, "x")], 0.06, output_tokens=1)
    assert one.ttft_ms == pytest.approx(50.0)
    assert one.decode_tok_s is None  # no decode span with a single token
    assert one.itl_p50_ms is None


def test_usage_count_wins_over_chunk_count() -> None:
    # usage says 5 tokens though only 3 chunks came (the last one carried 3 tokens)
    chunks = [TokenChunk(0.1, "a"), TokenChunk(0.2, "b"), TokenChunk(0.3, "cde")]
    t = request_timing(0.0, chunks, 0.3, output_tokens=5)
    assert t.output_tokens == 5
    assert t.decode_tok_s == pytest.approx(4 / 0.2)


def test_bursts_are_flagged() -> None:
    chunks = [TokenChunk(1.0 + i * 0.0001, "t") for i in range(10)] + [TokenChunk(2.0, "z")]
    assert request_timing(0.9, chunks, 2.0).bursty is True
