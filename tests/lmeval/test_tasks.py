"""Task resolution, the JSONL and YAML checks (one sentence each), the lm_eval line, and the shipped task's build."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from playground.arena.accuracy import check_request
from playground.lmeval.runner import EvalSettings, EvalTarget, command_line
from playground.lmeval.tasks import ASSETS, SHIPPED, TaskError, read_jsonl_items, resolve_task
from playground.tiny.eval_task import build_items

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"question": "Return the", "choices": ["value", "file"], "answer": 0}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_shipped_task_resolves_to_its_yaml(tmp_path: Path) -> None:
    task = resolve_task(SHIPPED, tmp_path)
    assert task.name == SHIPPED and task.offline and task.items is not None and task.items >= 100
    yaml_text = (tmp_path / "tasks" / f"{SHIPPED}.yaml").read_text()
    assert str((ASSETS / f"{SHIPPED}.jsonl").resolve()) in yaml_text
    assert "output_type: multiple_choice" in yaml_text


def test_a_name_goes_to_lm_eval_and_a_yaml_keeps_its_folder(tmp_path: Path) -> None:
    assert resolve_task("arc_easy", tmp_path).include_path is None
    own = tmp_path / "mine.yaml"
    own.write_text("task: my_task\ndataset_path: json\nprocess_docs: !function utils.process\n")
    task = resolve_task(str(own), tmp_path)
    assert (task.name, task.include_path) == ("my_task", tmp_path)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], "line 1 of bad.jsonl is not JSON"),
        ([json.dumps(GOOD), json.dumps([1, 2])], "line 2 of bad.jsonl is not a JSON object"),
        ([json.dumps({**GOOD, "question": ""})], "has no question"),
        ([json.dumps({**GOOD, "choices": ["only one"]})], "needs choices: a list of two or more"),
        ([json.dumps({**GOOD, "answer": 2})], "needs answer: the index of the right choice, 0 to 1"),
        ([json.dumps({**GOOD, "answer": True})], "needs answer"),
        ([""], "bad.jsonl has no items"),
    ],
)
def test_malformed_jsonl_gets_one_sentence(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(TaskError) as err:
        resolve_task(str(write(tmp_path / "bad.jsonl", lines)), tmp_path / "work")
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "work" / "tasks").exists()  # nothing written for a task that was refused


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task: [unclosed\n", "bad.yaml is not valid YAML at line"),
        ("- a list\n", "bad.yaml is not an lm-eval task: it needs a `task:` name"),
        ("dataset_path: json\n", "needs a `task:` name"),
    ],
)
def test_malformed_yaml_gets_one_sentence(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(TaskError, match=message):
        resolve_task(str(tmp_path / "bad.yaml"), tmp_path)


def test_missing_file_and_odd_names(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="cannot read the task file"):
        resolve_task(str(tmp_path / "none.jsonl"), tmp_path)
    with pytest.raises(TaskError, match="is neither a task name nor a path"):
        resolve_task("arc easy; rm -rf", tmp_path)
    with pytest.raises(TaskError, match="choose a task"):
        resolve_task("  ", tmp_path)


def test_limit_zero_and_negative_fewshot_are_refused() -> None:
    assert check_request("t", 0, 0) == ["--limit must be at least 1 item (got 0); leave it out for the whole task"]
    assert check_request("t", None, -1) == ["few-shot must be 0 or more examples (got -1)"]
    assert check_request("t", 5, 2) == []


def test_locked_command_has_no_host_port_key_or_path(tmp_path: Path) -> None:
    task = resolve_task(SHIPPED, tmp_path)
    target = EvalTarget("A", "http://127.0.0.1:41234", "secret-key-123", "/home/me/models/llama")
    settings = EvalSettings(task, 100, 0)
    shown = command_line(target, settings, locked=False)
    assert "127.0.0.1:41234" in shown and "secret-key-123" not in shown and str(tmp_path) in shown
    locked = command_line(target, settings, locked=True)
    for secret in ("127.0.0.1", "41234", "secret-key-123", str(tmp_path), "/home/me"):
        assert secret not in locked
    assert "http://HOST:PORT/v1/completions" in locked and "model=MODEL" in locked


def test_builder_is_deterministic_and_well_formed() -> None:
    rng = random.Random(0)
    words = "return the value of an object file list name number string module given first last".split()
    docs = [" ".join(rng.choice(words) for _ in range(16)) + ".\n\nMore text." for _ in range(60)]
    first, second = build_items(docs, items=8, seed=5), build_items(docs, items=8, seed=5)
    assert first == second and first
    for item in first:
        assert isinstance(item["choices"], list) and len(item["choices"]) == 4
        assert len(set(item["choices"])) == 4


def test_shipped_file_is_what_its_script_writes(tmp_path: Path) -> None:
    """The committed task is reproducible: the script writes the same bytes (same Python, same seed)."""
    subprocess.run(
        [sys.executable, "-m", "playground.tiny.eval_task", "--out", str(tmp_path)], cwd=ROOT, check=True, timeout=300
    )
    for name in (f"{SHIPPED}.jsonl", f"{SHIPPED}.md"):
        assert (tmp_path / name).read_bytes() == (ASSETS / name).read_bytes()
    items = read_jsonl_items(ASSETS / f"{SHIPPED}.jsonl")
    assert len(items) >= 100
