"""The Accuracy tab through the real app (gradio_client): an evaluation on the session's engines, Cancel,
and a locked instance that shows the operator's latest report with placeholders and cannot run one."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client

from playground.arena.core import Arena
from playground.arena.settings import AppSettings
from playground.measure.specs import EngineSpec
from playground.ui.app import build_ui, polled_gently
from playground.views.accuracy import RESULT_COLUMNS

pytestmark = pytest.mark.engine


def test_evaluate_through_the_tab(client: Client, arena: Arena) -> None:
    message, table, disagree, commands = client.predict("stdlib_docstrings", 20, 1, "A and B", api_name="/accuracy")
    assert "**stdlib_docstrings**: 20 items, 1-shot; chance is 25 %" in message
    assert table["headers"] == RESULT_COLUMNS
    rows = table["data"]
    assert [r[0] for r in rows] == [f"{arena.slot('A').label} (baseline)", arena.slot("B").label]
    assert rows[0][2] == "—" and rows[1][2].endswith("%") and rows[1][4] == "20"
    assert len(disagree["data"]) == int(message.split("disagree on ")[1].split(" ")[0])
    engine = arena.slot("A").engine
    assert engine is not None and engine.base_url in commands and engine.api_key not in commands
    assert "--num_fewshot 1" in commands and "--limit 20" in commands


def test_bad_task_and_cancel_with_nothing_running(client: Client) -> None:
    message, table, _d, commands = client.predict("no such task!", 5, 0, "A and B", api_name="/accuracy")
    assert message == "✕ 'no such task!' is neither a task name nor a path to a .yaml or .jsonl file"
    assert table["data"] in ([], [[]]) or not any(any(r) for r in table["data"])
    assert commands == ""
    assert client.predict(api_name="/cancel_accuracy") == "No evaluation is running."


def test_locked_shows_the_latest_report_without_host_details(arena: Arena, data_dir: Path, client: Client) -> None:
    """Runs after the evaluation above: a locked app over the same data folder shows it, with placeholders."""
    engines = [arena.slot(n).engine for n in ("A", "B")]
    specs = [EngineSpec(model="unused", endpoint=e.base_url, api_key=e.api_key) for e in engines if e]
    public = Arena(specs, data_dir=data_dir, device=arena.device)
    demo = build_ui(public, AppSettings(locked=True))
    polled_gently(demo.queue()).launch(prevent_thread_lock=True, server_port=None, quiet=True)
    try:
        visitor = Client(demo.local_url, verbose=False)
        names = {d.get("api_name") for d in demo.config["dependencies"]}
        assert "accuracy" not in names and "cancel_accuracy" not in names  # not even in the API
        message, table, _d, commands = visitor.predict(api_name="/accuracy_latest")
        assert message.startswith("The operator's latest evaluation:")
        assert len(table["data"]) == 2 and "http://HOST:PORT/v1/completions" in commands
        for engine in engines:
            assert engine is not None and engine.base_url not in commands and engine.api_key not in commands
        assert str(data_dir) not in commands
    finally:
        demo.close()
        public.shutdown()
