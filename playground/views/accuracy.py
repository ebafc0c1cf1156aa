"""An accuracy report (AccuracyReport.as_dict, as saved) as table rows and text for the tab and the exports (pure)."""

from __future__ import annotations

from typing import Any

RESULT_COLUMNS = ["engine", "accuracy ± stderr", "recovery", "difference, 95 % interval", "items", "time", "items/s"]


def _per_engine(value: Any, label: str, first: bool) -> Any:
    """A pair's single figure, or a ladder's figure for `label`; None for the baseline itself."""
    if first:
        return None
    return value.get(label) if isinstance(value, dict) else value


def result_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per engine: accuracy ± standard error, recovery and paired difference against the first."""
    rows = []
    for n, e in enumerate(report.get("engines", [])):
        rec = _per_engine(report.get("recovery"), e["label"], n == 0)
        ci = _per_engine(report.get("difference_ci95"), e["label"], n == 0)
        rows.append(
            [
                e["label"] + (" (baseline)" if n == 0 else ""),
                f"{100 * e['accuracy']:.1f} % ± {100 * e['stderr']:.1f}",
                "—" if n == 0 else ("n/a (baseline scored 0)" if rec is None else f"{rec:.1f} %"),
                "—" if not ci else f"{100 * ci[0]:+.1f} pts [{100 * ci[1]:+.1f}, {100 * ci[2]:+.1f}]",
                str(e["items"]),
                f"{e['seconds']:.1f} s",
                f"{e['items_per_s']:.2f}",
            ]
        )
    return rows


def disagreement_columns(report: dict[str, Any]) -> list[str]:
    """The disagreement table's headers: the item, then each engine's pick."""
    return ["item", "prompt", "gold", *(e["label"] for e in report.get("engines", []))]


def disagreement_rows(report: dict[str, Any], limit: int = 200) -> list[list[str]]:
    """Items where the engines picked differently: prompt, the gold choice, each engine's choice (✓ when right)."""
    labels = [e["label"] for e in report.get("engines", [])]
    rows = []
    for d in report.get("disagreements", [])[:limit]:
        choices = d["choices"]
        gold = d["gold"]
        picks = [d["picks"].get(label) for label in labels]
        marks = [("—" if p is None else f"{'✓' if p == gold else '✕'} {choices[p]}") for p in picks]
        rows.append([str(d["doc_id"]), d["prompt"][-300:], choices[gold], *marks])
    return rows


def summary_line(report: dict[str, Any]) -> str:
    """One sentence: the task, the items, chance, and how many items the engines disagree on."""
    engines = report.get("engines", [])
    items = engines[0]["items"] if engines else 0
    return (
        f"**{report.get('task')}**: {items} items, {report.get('fewshot', 0)}-shot; chance is "
        f"{100 * float(report.get('chance', 0)):.0f} %. The engines disagree on "
        f"{len(report.get('disagreements', []))} item(s)."
    )


def commands_markdown(report: dict[str, Any], *, locked: bool) -> str:
    """ "Run this yourself": the lm_eval line per engine (placeholders for host, port, key and paths when locked)."""
    lines = report.get("lm_eval_command_locked" if locked else "lm_eval_command") or {}
    if not lines:
        return ""
    body = "\n\n".join(f"# {label}\n{line}" for label, line in lines.items())
    return (
        '**Run this yourself** (lm-eval 0.4.13, `pip install "lm-eval[api]"`; the engine needs '
        "`--enable-tokenizer-info-endpoint`):\n\n```bash\n" + body + "\n```"
    )


def accuracy_tasks(reports: list[dict[str, Any]]) -> list[str]:
    """The tasks of saved reports, newest first, each once."""
    return list(dict.fromkeys(str(r["task"]) for r in reports if "engines" in r))


def accuracy_by_variant(reports: list[dict[str, Any]], task: str) -> dict[str, str]:
    """`acc ± stderr` per engine label from the newest report on `task` that scored it (reports newest first)."""
    out: dict[str, str] = {}
    for report in reports:
        if report.get("task") != task:
            continue
        for e in report.get("engines", []):
            for label in (e["label"], e["label"].split(": ", 1)[-1]):  # "B: tiny AWQ" is the variant "tiny AWQ"
                out.setdefault(label, f"{100 * e['accuracy']:.1f} ± {100 * e['stderr']:.1f} %")
    return out
