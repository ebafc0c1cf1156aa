"""The arena's saved history: every compare and the memory series in SQLite, listed and exported
as JSON, CSV or one self-contained HTML report. A part the `Arena` holds, given the store, this
session's id, the data folder and the ladder whose rows a session export carries."""

from __future__ import annotations

import time
from pathlib import Path

from playground.arena.ladder import Ladder
from playground.measure.generation import GenerationParams
from playground.measure.records import CompareRun, EngineAnswer, MemorySample
from playground.store import report
from playground.store.sqlite import HistoryStore

EXPORT_FORMATS = ("json", "csv", "html")
SAMPLE_PAD_S = 5.0  # memory samples this long before and after a single exported run


class SavedRuns:
    """Saving compares as they complete and exporting them; `error` says what could not be saved."""

    def __init__(self, store: HistoryStore, session_id: str, data_dir: Path, ladder: Ladder):
        self.store = store
        self.session_id = session_id
        self.data_dir = data_dir
        self.ladder = ladder
        self.error = ""

    def save_run(
        self,
        number: int,
        prompt: str,
        mode: str,
        params: GenerationParams,
        answers: list[EngineAnswer],
        started_at: float,
        visitor: str | None,
    ) -> CompareRun | None:
        """Store a completed compare at once (before the UI shows it); None and `error` on failure."""
        try:
            run = self.store.save_run(
                self.session_id,
                number,
                prompt,
                mode,
                params,
                answers,
                started_at,
                time.time(),
                visitor,
            )
        except Exception as exc:  # a full disk must not cost the answer: the UI shows why it was not saved
            self.error = f"the run was not saved: {type(exc).__name__}: {exc}"
            return None
        self.error = ""
        return run

    def save_sample(self, sample: MemorySample) -> None:
        """Store one memory sample; a failure is kept in `error` for the cards."""
        try:
            self.store.add_sample(self.session_id, sample)
        except Exception as exc:
            self.error = f"memory samples are not being saved: {type(exc).__name__}: {exc}"

    def runs(self, *, visitor: str | None = None, limit: int = 200) -> list[CompareRun]:
        """Saved runs of every session, newest first; only `visitor`'s own when given (locked instances)."""
        return self.store.runs(None, limit, visitor=visitor)

    def export(self, fmt: str, *, run_id: int | None = None, visitor: str | None = None) -> Path:
        """Write one run (or this session's runs) as json, csv or html under data/exports; return the file."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)} (got {fmt!r})")
        if run_id is not None:
            run = self.store.run(run_id, visitor=visitor)
            if run is None:
                raise ValueError(f"no saved run #{run_id}" + (" of yours" if visitor else ""))
            runs = [run]
            session_id = run.session_id
            samples = self.store.samples(session_id, run.started_at - SAMPLE_PAD_S, run.finished_at + SAMPLE_PAD_S)
            name = f"run-{run_id}"
        else:
            session_id = self.session_id
            runs = self.store.runs(session_id, None, visitor=visitor)
            samples = self.store.samples(session_id)
            name = f"session-{session_id}"
        sessions = [s] if (s := self.store.session(session_id)) else []
        title = f"vLLM Quantization Playground: {name}"
        if fmt == "json":
            text = report.runs_json(runs, samples, sessions=sessions)
        elif fmt == "csv":
            text = report.runs_csv(runs)
        else:
            ladder = self.ladder.rows if run_id is None else []  # the session's ladder goes with the session
            text = report.runs_html(
                runs, samples, title, sessions=sessions, ladder_rows=ladder, baseline=self.ladder.baseline
            )
        folder = self.data_dir / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"playground-{name}.{fmt}"
        path.write_text(text, encoding="utf-8")
        return path
