"""Exports of stored runs: JSON and CSV that parse, and an HTML report that opens offline."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from playground.measure.ladder import LadderRow
from playground.measure.records import CompareRun, MemorySample, SessionInfo
from playground.store.report import CSV_COLUMNS, engine_labels, request_records, runs_csv, runs_html, runs_json
from playground.store.sqlite import HistoryStore
from tests.store.test_store import T0, make_run_args, sample

XSS = "<script>alert(1)</script>"


class Stored:
    """A real store holding one session of three runs (the last with a hostile prompt) and samples."""

    def __init__(self, path: Path):
        self.store = HistoryStore(path)
        self.session_id = self.store.open_session("CPU · 2 cores", {"A": "tiny bf16", "B": "tiny awq"})
        for n in (1, 2):
            self.store.save_run(self.session_id, **make_run_args(n))
        args = make_run_args(3)
        args["prompt"] = f"Say {XSS} & stop"
        self.store.save_run(self.session_id, **args)
        self.store.add_samples(self.session_id, [sample(T0 + i) for i in range(5)])
        self.runs: list[CompareRun] = self.store.runs(self.session_id)
        self.samples: list[MemorySample] = self.store.samples(self.session_id)
        self.sessions: list[SessionInfo] = self.store.sessions()


@pytest.fixture
def stored(tmp_path: Path) -> Any:
    s = Stored(tmp_path / "history.sqlite")
    yield s
    s.store.close()


class Assets(HTMLParser):
    """Collects what a page would fetch: script src and link href, and counts inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.fetched.append(str(found["src"]))
            else:
                self.inline_scripts += 1
        if tag == "link" and found.get("href"):
            self.fetched.append(str(found["href"]))


def test_json_holds_every_run_answer_figure_and_sample(stored: Stored) -> None:
    doc = json.loads(runs_json(stored.runs, stored.samples, sessions=stored.sessions))
    assert [r["number"] for r in doc["runs"]] == [1, 2, 3]  # oldest first
    first = doc["runs"][0]
    assert first["params"] == {
        "max_tokens": 17,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": None,
        "chat": False,
        "ignore_eos": False,
    }
    a, b = first["answers"]
    assert a["slot"] == "A" and a["text"] == "answer 1 ‹ünïcode› <b>"
    assert a["ttft_ms"] == 13.5 and a["decode_tok_s"] == 0.1 + 0.2 and a["e2e_ms"] == 251.0
    assert a["timing"]["output_tokens"] == 1 and a["engine_notes"] == ["loaded bf16", "fallback kernel"]
    assert b["text"] == "" and b["error"] == "boom 1" and b["timing"] is None and b["ttft_ms"] is None
    assert [s["t"] for s in doc["memory_samples"]] == [T0 + i for i in range(5)]
    assert doc["memory_samples"][0]["engines"] == {"A": 1e9, "B": None}
    assert doc["sessions"][0]["device"] == "CPU · 2 cores" and doc["sessions"][0]["runs"] == 3


def test_csv_has_two_rows_per_run_and_the_header(stored: Stored) -> None:
    rows = list(csv.reader(io.StringIO(runs_csv(stored.runs))))
    assert tuple(rows[0]) == CSV_COLUMNS
    for name in ("run_id", "prompt", "params", "slot", "ttft_ms", "decode_tok_s", "itl_p95_ms", "bursty", "text"):
        assert name in CSV_COLUMNS
    body = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]]
    assert len(body) == 2 * len(stored.runs)
    assert [(r["number"], r["slot"]) for r in body] == [(n, s) for n in ("1", "2", "3") for s in ("A", "B")]
    a, b = body[0], body[1]
    assert float(a["ttft_ms"]) == 13.5 and a["itl_p95_ms"] == "" and a["bursty"] == "False"
    assert a["engine_notes"] == "loaded bf16 | fallback kernel" and a["text"] == "answer 1 ‹ünïcode› <b>"
    assert b["error"] == "boom 1" and b["ttft_ms"] == "" and b["text"] == ""
    assert body[0]["prompt"] == "prompt 1\nsecond line"  # newlines survive quoting
    assert json.loads(a["params"])["max_tokens"] == 17


def test_html_is_self_contained_with_charts_and_escaped_text(stored: Stored) -> None:
    page = runs_html(stored.runs, stored.samples, "Session <one>", sessions=stored.sessions)
    assets = Assets()
    assets.feed(page)
    assert assets.fetched == []
    assert page.count('class="plotly-graph-div"') == 2
    assert page.count("plotly.js v") == 1  # the library is inlined once
    assert XSS not in page and "alert(1)</script>" not in page
    assert "Say &lt;script&gt;alert(1)&lt;/script&gt; &amp; stop" in page
    assert "<title>Session &lt;one&gt;</title>" in page
    assert "answer 2 ‹ünïcode› &lt;b&gt;" in page and "boom 2" in page
    assert "CPU · 2 cores" in page and "A: tiny (org/tiny, auto)" in page
    assert page.index("Compare #1") < page.index("Compare #2") < page.index("Compare #3")


def test_html_of_one_run(stored: Stored) -> None:
    run = stored.runs[-1]
    page = runs_html([run], stored.samples[:2], "One run")
    assert page.count("Compare #") == 1 and "1 run from" in page
    assert page.count('class="plotly-graph-div"') == 2


def test_hostile_engine_labels_stay_inside_the_chart_data(stored: Stored) -> None:
    args = make_run_args(4)
    args["answers"] = tuple(replace(a, label=f"{a.slot}: {XSS}") for a in args["answers"])
    run = stored.store.save_run(stored.session_id, **args)
    page = runs_html([run], stored.samples, "t")
    assert XSS not in page
    assets = Assets()
    assets.feed(page)
    assert assets.fetched == []


def test_an_empty_session_exports_and_says_so(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "history.sqlite") as store:
        session = store.open_session("cuda: H100", {"A": "big", "B": "big awq"})
        runs, samples, sessions = store.runs(session), store.samples(session), store.sessions()
    assert json.loads(runs_json(runs, samples, sessions=sessions))["runs"] == []
    assert list(csv.reader(io.StringIO(runs_csv(runs)))) == [list(CSV_COLUMNS)]
    page = runs_html(runs, samples, "Nothing yet", sessions=sessions)
    assert "No runs in this export." in page and "0 runs" in page
    assert "A: big" in page and "cuda: H100" in page
    assert page.count('class="plotly-graph-div"') == 2


def test_chart_inputs_come_from_the_runs(stored: Stored, tmp_path: Path) -> None:
    records = request_records(stored.runs)
    assert [(r.request_no, r.slot) for r in records] == [(1, "A"), (2, "A"), (3, "A")]  # B has no timing
    assert engine_labels(stored.runs) == {"A": "A: tiny", "B": "B: tiny · awq"}
    other = stored.store.open_session("cpu", {})
    stored.store.save_run(other, **make_run_args(1))  # a second session also numbers from 1
    records = request_records(stored.store.runs())
    assert [r.request_no for r in records] == [1, 2, 3, 4]
    assert engine_labels([], stored.sessions) == {"A": "A: tiny bf16", "B": "B: tiny awq"}


def test_html_carries_the_sessions_ladder(stored: Stored) -> None:
    rows = [
        LadderRow("bf16", "m", "auto", weights_gb=0.02, kl_mean=0.0, kl_exact=True),
        LadderRow("GPTQ <4-bit>", "m", "gptq", kernel="CPUWNA16LinearKernel", weights_gb=0.007, kl_mean=0.031),
    ]
    page = runs_html(stored.runs, stored.samples, "With a ladder", ladder_rows=rows, baseline="bf16")
    assert "Quantization ladder (baseline: bf16)" in page
    assert "bf16 (baseline)" in page and "0.0000 (exact)" in page and "0.0310 (≥, top-k)" in page
    assert "GPTQ &lt;4-bit&gt;" in page and "<4-bit>" not in page.split("<script")[0]  # escaped outside the chart data
    assert "Memory against quality loss" in page
    assert "Quantization ladder" not in runs_html(stored.runs, stored.samples, "No ladder")
