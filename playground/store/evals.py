"""Saved accuracy reports: one JSON file each under data/evals, written whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


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
