"""The session summary from hand-made records."""

from __future__ import annotations

from playground.measure.metrics import RequestTiming
from playground.measure.quality import Divergence, GreedyAnswer, PerplexityResult, QualityReport
from playground.measure.records import RequestRecord
from playground.measure.summary import summarize, summary_rows


def record(slot: str, decode: float | None, error: str = "", shared_with: int | None = 0) -> RequestRecord:
    timing = RequestTiming(10.0, decode, 1.0, 2.0, 100.0, 3, 10)
    return RequestRecord(1, 0.0, slot, slot, "fair", "p", timing, error, shared_with)


def test_summary_takes_medians_and_latest_quality() -> None:
    history = [
        record("A", 100.0),
        record("A", 300.0),
        record("A", 200.0),
        record("A", 999.0, error="x"),
        record("B", 50.0),
        record("B", None),
        record("A", 20.0, shared_with=3),  # shared the engine: on the chart, not in the median
        record("B", 5.0, shared_with=1),
        record("B", 7.0, shared_with=None),  # load not recorded: neither alone nor counted as shared
    ]
    empty = GreedyAnswer("", [], [], [], [])
    older = QualityReport("p", empty, empty, Divergence(None, 1.0, 4), [], [], 5, PerplexityResult(9.0, 9.5, 10, 8, 4))
    newer = QualityReport("p", empty, empty, Divergence(2, 0.5, 4), [], [], 5, None)
    rows = summarize(
        {"A": "A: x", "B": "B: y"}, {"A": (1.5, "vLLM log")}, {"A": 1000, "B": None}, history, [older, newer]
    )
    a, b = rows
    assert a.decode_tok_s == 200.0 and a.requests == 3, "errors, missing speeds and shared requests are left out"
    assert b.decode_tok_s == 50.0 and b.requests == 1
    assert (a.shared, b.shared) == (1, 1)
    assert a.agreement == b.agreement == 0.5, "agreement from the latest run"
    assert (a.perplexity, b.perplexity) == (9.0, 9.5), "perplexity from the latest run that scored a text"
    assert (a.weights_gib, a.weights_source, b.weights_gib) == (1.5, "vLLM log", None)
    cells = summary_rows(rows)
    assert cells[0][3] == "1,000" and cells[1][1] == "–" and cells[0][6] == "50.0 %"
    assert cells[0][4] == "200.0" and cells[0][5] == "3 / 1"


def test_summary_says_when_no_request_ran_alone() -> None:
    history = [record("A", 100.0, shared_with=4), record("A", 90.0, shared_with=2)]
    a, b = summarize({"A": "A", "B": "B"}, {}, {}, history, [])
    assert a.decode_tok_s is None and (a.requests, a.shared) == (0, 2)
    cells = summary_rows([a, b])
    assert cells[0][4] == "none ran alone" and cells[0][5] == "0 / 2"
    assert cells[1][4] == "–" and cells[1][5] == "0 / 0", "nothing measured is not 'none ran alone'"


def test_summary_before_anything_ran() -> None:
    rows = summarize({"A": "A", "B": "B"}, {}, {}, [], [])
    assert all(r.decode_tok_s is None and r.agreement is None and r.requests == 0 for r in rows)
