"""Each saved answer keeps its engine as code: through SQLite (schema 2, also from a schema-1 file) into
the JSON and HTML exports."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

from playground.store.report import runs_html, runs_json
from playground.store.sqlite import MIGRATIONS, HistoryStore
from tests.store.test_store import make_run_args

SERVE = "VLLM_CPU_KVCACHE_SPACE=1 vllm serve /q/tiny-W4A16 --gpu-memory-utilization 0.25 --enforce-eager"
PYTHON = "from vllm import LLM, SamplingParams\n\nllm = LLM(\n    model='/q/tiny-W4A16',\n)\n"
RECIPE = 'recipe = GPTQModifier(targets="Linear", scheme="W4A16", ignore=["lm_head"])\n'


def test_the_code_survives_the_store_and_reaches_every_export(tmp_path: Path) -> None:
    args = make_run_args(1)
    a, b = args["answers"]
    args["answers"] = (replace(a, vllm_serve=SERVE, python=PYTHON, llmcompressor=RECIPE), b)
    with HistoryStore(tmp_path / "h.sqlite") as store:
        session = store.open_session("cpu", {"A": "tiny"})
        store.save_run(session, **args)
        run = store.runs()[0]
    saved = {x.slot: x for x in run.answers}
    assert (saved["A"].vllm_serve, saved["A"].python, saved["A"].llmcompressor) == (SERVE, PYTHON, RECIPE)
    assert saved["B"].vllm_serve == ""
    exported = json.loads(runs_json([run], []))
    answer = exported["runs"][0]["answers"][0]
    assert (answer["vllm_serve"], answer["python"], answer["llmcompressor"]) == (SERVE, PYTHON, RECIPE)
    html = runs_html([run], [], "t")
    assert html.count("<summary>Run this yourself</summary>") == 1  # B has none
    assert "vllm serve /q/tiny-W4A16" in html and "GPTQModifier(targets=&quot;Linear&quot;" in html


def test_a_schema_1_file_gains_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with HistoryStore(path) as store:
        session = store.open_session("cpu", {"A": "tiny"})
        store.save_run(session, **make_run_args(2))
        assert store.runs()[0].answers[0].vllm_serve == ""
