"""Saved accuracy reports: one JSON file each under data/evals, written whole or not at all."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from playground.views.accuracy import (
    RESULT_COLUMNS,
    commands_markdown,
    disagreement_columns,
    disagreement_rows,
    result_rows,
    summary_line,
)

EXPORT_FORMATS = ("json", "csv", "html")
CSV_COLUMNS = ("saved_at", "task", "limit", "fewshot", "chance", "label", "accuracy", "stderr", "items", "seconds",
               "items_per_s", "recovery", "difference", "difference_low", "difference_high")  # fmt: skip


class EvalStore:
    """The accuracy reports an instance has run, newest first."""

    def __init__(self, folder: Path):
        self.folder = folder

    def save(self, report: dict[str, Any]) -> Path:
        """Write one report (the JSON of AccuracyReport.as_dict plus when it ran); atomic by rename."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        task = "".join(c if c.isalnum() or c in "_-." else "_" for c in str(report.get("task", "task")))
        path = self.folder / f"{stamp}-{time.time_ns() % 10**9:09d}-{task}.json"
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({**report, "saved_at": time.time()}, fh, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def reports(self, limit: int = 50) -> list[dict[str, Any]]:
        """The saved reports, newest first (a file that does not parse is reported by name, not skipped silently)."""
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob("*.json"), reverse=True)[:limit]:
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                out.append({"task": path.name, "error": f"unreadable: {exc}"})
        return out

    def latest(self) -> dict[str, Any] | None:
        """The newest report, if any."""
        found = self.reports(limit=1)
        return found[0] if found else None

    def export(self, fmt: str, out_dir: Path, *, locked: bool) -> Path:
        """Every saved report as one JSON, CSV or HTML file in `out_dir`; locked: placeholder lm_eval lines only."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)} (got {fmt!r})")
        reports = [shown(r, locked=locked) for r in self.reports(limit=1000) if "engines" in r]
        if not reports:
            raise ValueError("no accuracy report has been saved yet: run one in the Accuracy tab first")
        text = {"json": lambda: json.dumps(reports, indent=1), "csv": lambda: reports_csv(reports),
                "html": lambda: reports_html(reports)}[fmt]()  # fmt: skip
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"accuracy-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
        path.write_text(text, encoding="utf-8")
        return path


def shown(report: dict[str, Any], *, locked: bool) -> dict[str, Any]:
    """The report as a reader sees it: on a locked instance, the lm_eval lines with placeholders only."""
    out = dict(report)
    placeholders = out.pop("lm_eval_command_locked", None)
    if locked:
        out["lm_eval_command"] = placeholders or {}
    return out


def _per_engine(value: Any, label: str) -> Any:
    return value.get(label) if isinstance(value, dict) else value


def reports_csv(reports: list[dict[str, Any]]) -> str:
    """One row per engine per report; recovery and the difference are against the report's baseline (blank there)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for r in reports:
        for n, e in enumerate(r["engines"]):
            rec = None if n == 0 else _per_engine(r.get("recovery"), e["label"])
            ci = (None, None, None) if n == 0 else (_per_engine(r.get("difference_ci95"), e["label"]) or (None,) * 3)
            head = [r.get("saved_at"), r["task"], r.get("limit"), r.get("fewshot"), r.get("chance"), e["label"]]
            writer.writerow([*head, e["accuracy"], e["stderr"], e["items"], e["seconds"], e["items_per_s"], rec, *ci])
    return buf.getvalue()


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def reports_html(reports: list[dict[str, Any]]) -> str:
    """One self-contained page: each report's scores, disagreements and lm_eval lines."""
    parts = []
    for r in reports:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(r.get("saved_at") or 0)))
        lines = commands_markdown(r, locked=False).split("```bash\n", 1)[-1].rstrip("`\n")
        parts.append(
            f"<h2>{html.escape(str(r['task']))} ({when})</h2><p>{html.escape(summary_line(r).replace('**', ''))}</p>"
            + _table(RESULT_COLUMNS, result_rows(r))
            + "<h3>Items where the engines disagree</h3>"
            + _table(disagreement_columns(r), disagreement_rows(r))
            + f"<h3>Run this yourself</h3><pre>{html.escape(lines)}</pre>"
        )
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc}"
    head = f"<!doctype html><meta charset=utf-8><title>Accuracy</title><style>{style}</style><h1>Accuracy</h1>"
    return head + "".join(parts)
