"""Every compare, its answers and figures, and the memory series, kept in one SQLite file (WAL mode)."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

from playground.measure.generation import GenerationParams
from playground.measure.metrics import RequestTiming
from playground.measure.records import CompareRun, EngineAnswer, MemorySample, SessionInfo

# Migration i takes the file from schema version i to i + 1 (PRAGMA user_version); append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            started_at REAL NOT NULL,
            device TEXT NOT NULL,
            specs TEXT NOT NULL
        )""",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL NOT NULL,
            prompt TEXT NOT NULL,
            mode TEXT NOT NULL,
            params TEXT NOT NULL,
            visitor TEXT  -- the browser session that asked (locked instances show visitors their own runs)
        )""",
        "CREATE INDEX runs_by_session ON runs(session_id, started_at)",
        "CREATE INDEX runs_by_start ON runs(started_at)",
        # Timing figures get columns so the history can be queried with plain SQL; e2e_ms is NULL
        # exactly when the answer has no timing (RequestTiming always has an end-to-end time).
        """CREATE TABLE answers (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            pos INTEGER NOT NULL,
            slot TEXT NOT NULL,
            label TEXT NOT NULL,
            model TEXT NOT NULL,
            quantization TEXT NOT NULL,
            text TEXT NOT NULL,
            error TEXT NOT NULL,
            memory_mb REAL,
            finish_reason TEXT,
            engine_notes TEXT NOT NULL,
            ttft_ms REAL,
            decode_tok_s REAL,
            itl_p50_ms REAL,
            itl_p95_ms REAL,
            e2e_ms REAL,
            prompt_tokens INTEGER,
            output_tokens INTEGER,
            bursty INTEGER,
            PRIMARY KEY (run_id, pos)
        )""",
        """CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            t REAL NOT NULL,
            engines TEXT NOT NULL,
            device_used REAL NOT NULL,
            device_total REAL NOT NULL,
            source TEXT NOT NULL
        )""",
        "CREATE INDEX samples_by_session ON samples(session_id, t)",
    ),
    (  # each answer keeps its engine as code to run yourself (issue 11)
        "ALTER TABLE answers ADD COLUMN vllm_serve TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE answers ADD COLUMN python TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE answers ADD COLUMN llmcompressor TEXT NOT NULL DEFAULT ''",
    ),
    (  # each answer keeps the load it ran under: other requests on its engine at most (issue 20)
        "ALTER TABLE answers ADD COLUMN shared_with INTEGER",
    ),
    (  # memory per GPU, not only totals (issue 22): JSON {slot: {gpu: bytes}} and {gpu: bytes}
        "ALTER TABLE samples ADD COLUMN by_gpu TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE samples ADD COLUMN gpus_used TEXT NOT NULL DEFAULT '{}'",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_TIMING = ("ttft_ms", "decode_tok_s", "itl_p50_ms", "itl_p95_ms", "e2e_ms", "prompt_tokens", "output_tokens", "bursty")
_ANSWER = (
    "slot",
    "label",
    "model",
    "quantization",
    "text",
    "error",
    "memory_mb",
    "finish_reason",
    "engine_notes",
    "vllm_serve",
    "python",
    "llmcompressor",
    "shared_with",
)
_RUN = "id, session_id, number, started_at, finished_at, prompt, mode, params"


class StoreError(RuntimeError):
    """The history file cannot be used: written by a newer version, or not a history file."""


def new_session_id(now: float | None = None) -> str:
    """A sortable, unique session id: local start time plus a random suffix."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + "-" + secrets.token_hex(3)


class HistoryStore:
    """The history in one SQLite file; safe to call from any thread, each write one transaction."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are begun and committed explicitly in _write.
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the history file {self.path}: {exc}") from exc
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{self.path}: SQLite would not switch to WAL mode (got {mode!r})")
            # FULL syncs the WAL on every commit: a saved run survives a SIGKILL or a power cut.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except StoreError:
            self._db.close()
            raise
        except sqlite3.OperationalError as exc:  # a folder or file it may not write, a full disk
            self._db.close()
            raise StoreError(f"cannot write the history file {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"{self.path} is not a history file SQLite can read ({exc}): move it aside to start a new one"
            ) from exc

    # -- plumbing ---------------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; rolled back if anything in it fails."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _migrate(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has history schema {version}; this version reads up to {SCHEMA_VERSION}")
            for step in MIGRATIONS[version:]:
                for statement in step:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def schema_version(self) -> int:
        """The file's schema version (PRAGMA user_version)."""
        return int(self._read("PRAGMA user_version")[0][0])

    def close(self) -> None:
        """Close the file; safe to call twice."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------------
    def open_session(self, device: str, specs: dict[str, str]) -> str:
        """Record a new session (start time, device, each slot's engine) and return its id."""
        now = time.time()
        session_id = new_session_id(now)
        with self._write() as db:
            db.execute(
                "INSERT INTO sessions (id, started_at, device, specs) VALUES (?, ?, ?, ?)",
                (session_id, now, device, json.dumps(specs)),
            )
        return session_id

    def save_run(
        self,
        session_id: str,
        number: int,
        prompt: str,
        mode: str,
        params: GenerationParams,
        answers: Sequence[EngineAnswer],
        started_at: float,
        finished_at: float,
        visitor: str | None = None,
    ) -> CompareRun:
        """Store one compare and all its answers in one transaction; return it with its id."""
        settings = asdict(params)
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO runs (session_id, number, started_at, finished_at, prompt, mode, params, visitor)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, number, started_at, finished_at, prompt, mode, json.dumps(settings), visitor),
            )
            run_id = cursor.lastrowid
            assert run_id is not None
            columns = ("run_id", "pos", *_ANSWER, *_TIMING)
            db.executemany(
                f"INSERT INTO answers ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [(run_id, pos, *_answer_row(a)) for pos, a in enumerate(answers)],
            )
        return CompareRun(run_id, session_id, number, started_at, finished_at, prompt, mode, settings, tuple(answers))

    def add_sample(self, session_id: str, sample: MemorySample) -> None:
        """Store one memory sample of the session."""
        self.add_samples(session_id, [sample])

    def add_samples(self, session_id: str, samples: Iterable[MemorySample]) -> None:
        """Store several memory samples of the session in one transaction."""
        rows = [
            (
                session_id,
                s.t,
                json.dumps(s.engines),
                s.device_used,
                s.device_total,
                s.source,
                json.dumps(s.by_gpu),
                json.dumps(s.gpus_used),
            )
            for s in samples
        ]
        with self._write() as db:
            db.executemany(
                "INSERT INTO samples (session_id, t, engines, device_used, device_total, source, by_gpu, gpus_used)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    # -- reading ----------------------------------------------------------------------------------
    def runs(
        self, session_id: str | None = None, limit: int | None = 200, *, visitor: str | None = None
    ) -> list[CompareRun]:
        """Stored runs, newest first, of one session or of all (and of one visitor); `limit=None`: all."""
        clauses: list[str] = []
        args: list[object] = []
        for column, value in (("session_id", session_id), ("visitor", visitor)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._read(
            f"SELECT {_RUN} FROM runs {where} ORDER BY started_at DESC, id DESC LIMIT ?",
            [*args, -1 if limit is None else limit],
        )
        return self._with_answers(rows)

    def run(self, run_id: int, *, visitor: str | None = None) -> CompareRun | None:
        """One stored run by id (and asked by `visitor`, where given), or None."""
        sql, args = f"SELECT {_RUN} FROM runs WHERE id = ?", list[object]([run_id])
        if visitor is not None:
            sql, args = sql + " AND visitor = ?", [run_id, visitor]
        found = self._with_answers(self._read(sql, args))
        return found[0] if found else None

    def _with_answers(self, rows: list[tuple[Any, ...]]) -> list[CompareRun]:
        if not rows:
            return []
        ids = [row[0] for row in rows]
        answers: dict[int, list[EngineAnswer]] = {i: [] for i in ids}
        columns = ", ".join(("run_id", *_ANSWER, *_TIMING))
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):  # SQLite caps bound parameters
            found = self._read(
                f"SELECT {columns} FROM answers WHERE run_id IN ({', '.join('?' * len(chunk))}) ORDER BY run_id, pos",
                chunk,
            )
            for row in found:
                answers[row[0]].append(_answer_from(row[1:]))
        return [
            CompareRun(i, session, number, start, end, prompt, mode, json.loads(params), tuple(answers[i]))
            for i, session, number, start, end, prompt, mode, params in rows
        ]

    def sessions(self) -> list[SessionInfo]:
        """Every session, newest first, with its number of stored runs."""
        return [
            _session_from(row)
            for row in self._read(
                "SELECT s.id, s.started_at, s.device, s.specs, (SELECT COUNT(*) FROM runs r WHERE r.session_id = s.id)"
                " FROM sessions s ORDER BY s.started_at DESC, s.id DESC"
            )
        ]

    def session(self, session_id: str) -> SessionInfo | None:
        """One session by id, or None."""
        rows = self._read(
            "SELECT s.id, s.started_at, s.device, s.specs, (SELECT COUNT(*) FROM runs r WHERE r.session_id = s.id)"
            " FROM sessions s WHERE s.id = ?",
            [session_id],
        )
        return _session_from(rows[0]) if rows else None

    def samples(self, session_id: str, start: float | None = None, end: float | None = None) -> list[MemorySample]:
        """The session's memory samples in time order, within [start, end] where given."""
        rows = self._read(
            "SELECT t, engines, device_used, device_total, source, by_gpu, gpus_used FROM samples"
            " WHERE session_id = ? AND t >= ? AND t <= ? ORDER BY t, id",
            [session_id, float("-inf") if start is None else start, float("inf") if end is None else end],
        )
        return [
            MemorySample(t, json.loads(engines), used, total, source, _per_gpu(by_gpu), _gpu_keys(json.loads(gpus)))
            for t, engines, used, total, source, by_gpu, gpus in rows
        ]


def _gpu_keys(values: dict[str, float]) -> dict[int, float]:
    """JSON keeps GPU indices as strings: back to ints."""
    return {int(k): v for k, v in values.items()}


def _per_gpu(text: str) -> dict[str, dict[int, float]]:
    return {slot: _gpu_keys(split) for slot, split in json.loads(text).items()}


def _answer_row(answer: EngineAnswer) -> tuple[Any, ...]:
    values = {k: getattr(answer, k) for k in _ANSWER}
    values["engine_notes"] = json.dumps(list(answer.engine_notes))
    timing = answer.timing.as_dict() if answer.timing else dict.fromkeys(_TIMING)
    return (*(values[k] for k in _ANSWER), *(timing[k] for k in _TIMING))


def _answer_from(row: Sequence[Any]) -> EngineAnswer:
    fields = dict(zip(_ANSWER, row[: len(_ANSWER)], strict=True))
    timing = dict(zip(_TIMING, row[len(_ANSWER) :], strict=True))
    fields["engine_notes"] = tuple(json.loads(fields["engine_notes"]))
    if timing["e2e_ms"] is None:
        return EngineAnswer(**fields, timing=None)
    timing["bursty"] = bool(timing["bursty"])
    return EngineAnswer(**fields, timing=RequestTiming(**timing))


def _session_from(row: Sequence[Any]) -> SessionInfo:
    session_id, started_at, device, specs, runs = row
    return SessionInfo(session_id, started_at, device, json.loads(specs), runs)
