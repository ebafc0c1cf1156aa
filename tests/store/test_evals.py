"""Saved accuracy reports: written whole, listed newest first, exported as JSON, CSV and HTML (locked: placeholders)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from playground.measure.accuracy import AccuracyReport, EngineAccuracy, ItemResult
from playground.store.evals import CSV_COLUMNS, EvalStore


def saved(task: str) -> dict[str, object]:
    items = tuple(ItemResult(i, f"q{i} <b>", ("yes", "no"), 0, i % 2) for i in range(4))
    other = tuple(ItemResult(i, f"q{i} <b>", ("yes", "no"), 0, 0) for i in range(4))
    engines = (
        EngineAccuracy(
            "A: bf16", items, 2.0, "lm_eval --model_args base_url=http://127.0.0.1:5/v1", "lm_eval HOST:PORT"
        ),
        EngineAccuracy(
            "B: awq", other, 2.0, "lm_eval --model_args base_url=http://127.0.0.1:6/v1", "lm_eval HOST:PORT"
        ),
    )
    report = AccuracyReport(task, 4, 0, engines, 0.5)
    return {**report.as_dict(), "lm_eval_command_locked": report.as_dict(locked=True)["lm_eval_command"]}


def test_reports_whole_and_newest_first(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "evals")
    assert store.reports() == [] and store.latest() is None
    store.save(saved("first"))
    store.save(saved("second"))
    (tmp_path / "evals" / "half.json.part").write_text("{")  # a write that never finished is not a report
    assert [r["task"] for r in store.reports()] == ["second", "first"]
    (tmp_path / "evals" / "99999999-broken.json").write_text("{")
    assert store.reports()[0] == {"task": "99999999-broken.json", "error": store.reports()[0]["error"]}
    assert store.reports()[0]["error"].startswith("unreadable:")


def test_exports(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "evals")
    with pytest.raises(ValueError, match="no accuracy report has been saved yet"):
        store.export("json", tmp_path / "out", locked=False)
    store.save(saved("t"))
    data = json.loads(store.export("json", tmp_path / "out", locked=False).read_text())
    assert data[0]["lm_eval_command"]["A: bf16"].endswith("127.0.0.1:5/v1") and "lm_eval_command_locked" not in data[0]
    locked = store.export("json", tmp_path / "out", locked=True).read_text()
    assert "127.0.0.1" not in locked and "HOST:PORT" in locked
    rows = list(csv.reader(io.StringIO(store.export("csv", tmp_path / "out", locked=False).read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS and [r[5] for r in rows[1:]] == ["A: bf16", "B: awq"]
    assert rows[1][11] == "" and float(rows[2][11]) == pytest.approx(200.0)  # B right on 4 of 4, A on 2 of 4
    page = store.export("html", tmp_path / "out", locked=False).read_text()
    assert "q1 &lt;b&gt;" in page and "q1 <b>" not in page
    with pytest.raises(ValueError, match="export format must be one of json, csv, html"):
        store.export("xml", tmp_path / "out", locked=False)
