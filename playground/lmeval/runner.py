"""lm-eval as a subprocess in its own environment against one running engine: command, progress, Cancel, results."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from playground.lmeval.tasks import EvalTask
from playground.measure.accuracy import EngineAccuracy, item_from_sample, request_progress
from playground.procs.tree import stop_tree

ROOT = Path(__file__).resolve().parent.parent.parent
# Concurrent requests per engine: vLLM batches them; 8 kept both tiny CPU engines busy without queueing.
CONCURRENCY = 8
# Every `lm_eval run` first indexes lm-eval's own ~14,000 task YAML files: 10 of its 15 s of CPU on 2 cores
# before the first request (docs/NOTES.md). A task the playground wrote from a JSONL file uses none of them, so
# for those lm-eval runs through this launcher, which indexes the task's own folder only. The results are the
# same: a task in --include_path overrides a built-in one of the same name anyway. The command shown to run it
# yourself is the plain `lm_eval` line.
LOCAL_ONLY_LAUNCHER = """
import runpy, sys
from lm_eval.tasks import manager
_init = manager.TaskManager.__init__
def _local_only(self, *args, include_defaults=True, **kwargs):
    _init(self, *args, include_defaults=False, **kwargs)
manager.TaskManager.__init__ = _local_only
sys.argv[0] = "lm_eval"
runpy.run_module("lm_eval", run_name="__main__", alter_sys=False)
"""
CANCELLED = "the evaluation was cancelled"  # the EvalError of a run stopped by its cancel event


class EvalError(RuntimeError):
    """lm-eval could not score an engine; the message is one sentence for the user."""


@dataclass(frozen=True)
class EvalTarget:
    """One running engine as lm-eval reaches it: its OpenAI endpoint, key and served model name."""

    label: str
    base_url: str
    api_key: str
    model: str


@dataclass(frozen=True)
class EvalSettings:
    """What to run: the task, how many items (None: all), how many few-shot examples."""

    task: EvalTask
    limit: int | None = None
    fewshot: int = 0


def eval_python() -> str:
    """The interpreter of lm-eval's environment (.venv-eval, made by scripts/install-eval)."""
    return os.environ.get("PLAYGROUND_EVAL_PYTHON") or str(ROOT / ".venv-eval" / "bin" / "python")


def lm_eval_args(target: EvalTarget, settings: EvalSettings, output: str) -> list[str]:
    """lm_eval's arguments: local-completions on the engine, its tokenizer from the engine's /tokenize."""
    model_args = (
        f"model={target.model},base_url={target.base_url}/v1/completions,tokenizer_backend=remote,"
        f"num_concurrent={CONCURRENCY},max_retries=2,timeout=120"
    )
    args = ["--model", "local-completions", "--model_args", model_args, "--tasks", settings.task.name]
    if settings.task.include_path is not None:
        args += ["--include_path", str(settings.task.include_path)]
    if settings.limit is not None:
        args += ["--limit", str(settings.limit)]
    args += ["--num_fewshot", str(settings.fewshot), "--output_path", output, "--log_samples"]
    return args


def command_line(target: EvalTarget, settings: EvalSettings, *, locked: bool) -> str:
    """The `lm_eval` line to run this yourself; the key is a placeholder, and when locked the host and paths too."""
    if locked:
        model = "MODEL" if target.model.startswith(("/", "~", ".")) else target.model  # a host path
        target = EvalTarget(target.label, "http://HOST:PORT", "", model)
        task = settings.task
        if task.include_path is not None:
            task = EvalTask(task.name, Path("TASK_FOLDER"), task.asked, task.items)
        settings = EvalSettings(task, settings.limit, settings.fewshot)
    args = lm_eval_args(target, settings, "OUTPUT_FOLDER" if locked else "results")
    return "OPENAI_API_KEY=<engine key> lm_eval " + " ".join(shlex.quote(a) for a in args)


def run_lm_eval(
    target: EvalTarget,
    settings: EvalSettings,
    out_dir: Path,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> EngineAccuracy:
    """Score one engine; raise EvalError with lm-eval's reason, or when cancelled."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "lm_eval.log"
    main = ["-c", LOCAL_ONLY_LAUNCHER] if settings.task.self_contained else ["-m", "lm_eval"]
    cmd = [eval_python(), *main, "run", *lm_eval_args(target, settings, str(out_dir))]
    if not Path(shutil.which(cmd[0]) or cmd[0]).exists():  # a path, or a command name on PATH
        raise EvalError(f"lm-eval's environment is missing ({cmd[0]}): run scripts/install-eval")
    env = {
        **os.environ,
        "OPENAI_API_KEY": target.api_key,  # in the environment, not argv, where `ps` would show it
        "HF_DATASETS_OFFLINE": "1",  # the machine may be offline; say so at once rather than retry
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - a list, never a shell
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        _follow(proc, log_path, on_progress, cancel)
    seconds = time.monotonic() - started
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if cancel is not None and cancel.is_set():
        raise EvalError(CANCELLED)
    if proc.returncode != 0:
        raise EvalError(explain_failure(text, settings.task, target))
    items = tuple(item_from_sample(row) for row in _sample_rows(out_dir, settings.task.name))
    if not items:
        raise EvalError(f"lm-eval scored no items of {settings.task.name!r} on {target.label}")
    shown = command_line(target, settings, locked=False), command_line(target, settings, locked=True)
    return EngineAccuracy(target.label, items, seconds, *shown)


def _follow(
    proc: subprocess.Popen[bytes],
    log_path: Path,
    on_progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
) -> None:
    """Wait for lm-eval, passing on its own progress bar's count; stop its whole tree on Cancel."""
    offset, last = 0, None
    while proc.poll() is None:
        if cancel is not None and cancel.is_set():
            stop_tree(proc, timeout_s=5)
            return
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
        offset += len(chunk)
        now = request_progress(chunk.decode("utf-8", "replace"))
        if now and now != last and on_progress:
            on_progress(*now)
            last = now
        time.sleep(0.25)


def _sample_rows(out_dir: Path, task: str) -> list[dict[str, object]]:
    """lm-eval's --log_samples lines for the task (the newest file when it was run more than once)."""
    files = sorted(out_dir.rglob(f"samples_{task}_*.jsonl"), key=lambda p: p.stat().st_mtime)
    if not files:
        return []
    return [json.loads(line) for line in files[-1].read_text(encoding="utf-8").splitlines() if line.strip()]


def explain_failure(log: str, task: EvalTask, target: EvalTarget) -> str:
    """lm-eval's failure as one sentence: unknown task, unreachable dataset, engine gone, or its last error line."""
    if "Tasks not found" in log or "not a valid task" in log or "are not found" in log:
        return f"lm-eval has no task called {task.name!r} (see `lm_eval ls tasks`), nor is it a .yaml or .jsonl file"
    offline = ("OfflineModeIsEnabled", "LocalEntryNotFoundError", "Couldn't reach", "offline mode is enabled")
    if any(mark in log for mark in offline):
        return (
            f"the dataset of task {task.name!r} cannot be reached from this machine (no network to the "
            "Hugging Face Hub); use the shipped task or your own .yaml/.jsonl"
        )
    if "Connection refused" in log or "ConnectionError" in log or "Server disconnected" in log:
        return f"engine {target.label} stopped answering during the evaluation"
    lines = [ln.strip() for ln in log.splitlines() if ln.strip() and not ln.startswith(" ")]
    return f"lm-eval failed on {target.label}: {lines[-1] if lines else 'no output'}"
