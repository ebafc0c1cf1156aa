"""What the user asked to evaluate: a task lm-eval knows by name, a YAML task file, or a JSONL of items."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML (gradio brings it) ships no stubs

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets" / "eval"
SHIPPED = "stdlib_docstrings"  # the offline task built by playground/tiny/eval_task.py
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
# A JSONL task becomes this lm-eval task: log-likelihood of each choice after the question.
_JSONL_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


class TaskError(ValueError):
    """The task cannot be used; the message is one sentence for the user."""


@dataclass(frozen=True)
class EvalTask:
    """A task as lm-eval runs it: its name, the folder of its YAML (None for lm-eval's own), and what was asked."""

    name: str
    include_path: Path | None
    asked: str
    items: int | None = None  # number of items, where the task is a file the playground read

    @property
    def offline(self) -> bool:
        """True for a task whose items are on this machine (the shipped one, a user's JSONL or YAML)."""
        return self.include_path is not None

    @property
    def self_contained(self) -> bool:
        """True for a task whose YAML the playground wrote from a JSONL file: it names none of lm-eval's tasks."""
        return self.items is not None


def resolve_task(text: str, workdir: Path) -> EvalTask:
    """The task for `text`: the shipped task's name, a .jsonl or .yaml path, or an lm-eval task name."""
    asked = text.strip()
    if not asked:
        raise TaskError("choose a task: the shipped stdlib_docstrings, an lm-eval task name, or a .yaml/.jsonl file")
    if asked == SHIPPED:
        return jsonl_task(ASSETS / f"{SHIPPED}.jsonl", workdir, name=SHIPPED, asked=asked)
    path = Path(asked).expanduser()
    if path.suffix == ".jsonl":
        return jsonl_task(path, workdir, name=_task_name(path.stem), asked=asked)
    if path.suffix in (".yaml", ".yml"):
        return yaml_task(path, asked)
    if not _NAME.match(asked):
        raise TaskError(f"{asked!r} is neither a task name nor a path to a .yaml or .jsonl file")
    return EvalTask(asked, None, asked)


def read_jsonl_items(path: Path) -> list[dict[str, Any]]:
    """The items of a JSONL task, each checked: question (text), choices (2 or more texts), answer (their index)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"cannot read the task file {path}: {exc}") from exc
    items = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"line {n} of {path.name} is not JSON ({exc.msg})") from exc
        if problem := _item_problem(item):
            raise TaskError(f"line {n} of {path.name} {problem}")
        items.append(item)
    if not items:
        raise TaskError(f"{path.name} has no items; each line needs question, choices and answer")
    return items


def _item_problem(item: Any) -> str:
    if not isinstance(item, dict):
        return "is not a JSON object with question, choices and answer"
    question, choices, answer = item.get("question"), item.get("choices"), item.get("answer")
    if not isinstance(question, str) or not question.strip():
        return "has no question (a non-empty text)"
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
        return "needs choices: a list of two or more non-empty texts"
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
        return f"needs answer: the index of the right choice, 0 to {len(choices) - 1}"
    return ""


def jsonl_task(path: Path, workdir: Path, *, name: str, asked: str) -> EvalTask:
    """Check a JSONL task and write the lm-eval YAML that reads it into `workdir`/tasks."""
    items = read_jsonl_items(path)
    folder = workdir / "tasks"
    folder.mkdir(parents=True, exist_ok=True)
    yaml_text = _JSONL_YAML.format(name=name, path=json.dumps(str(path.resolve())))
    (folder / f"{name}.yaml").write_text(yaml_text, encoding="utf-8")
    return EvalTask(name, folder, asked, items=len(items))


class _Tolerant(yaml.SafeLoader):
    """Reads lm-eval's YAML, whose `!function module.name` tags name Python it runs itself."""


_Tolerant.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))  # type: ignore[no-untyped-call]


def yaml_task(path: Path, asked: str) -> EvalTask:
    """A user's lm-eval YAML task: readable, a mapping, with a `task` name."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Tolerant)  # noqa: S506 - a SafeLoader subclass
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"cannot read the task file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise TaskError(f"{path.name} is not valid YAML{where}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("task"), str) or not _NAME.match(data["task"]):
        raise TaskError(f"{path.name} is not an lm-eval task: it needs a `task:` name")
    return EvalTask(data["task"], path.resolve().parent, asked)


def _task_name(stem: str) -> str:
    """An lm-eval task name from a file name (letters, digits, _ . -)."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", stem) or "user_task"
