"""The job records and the queue, in SQLite (the standard library's ``sqlite3``): one writer, WAL.

Every change goes through one connection under one lock (the one writer); reads use a connection of their own per
thread, which WAL lets run beside the writer. Each change is one statement or one transaction, so a process killed
at any moment (``kill -9``) leaves the records as they were before or after it. A job's files live in its folder
(:mod:`neural_style.serve.folders`); the record holds its state, settings, progress and the names of its results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["STATES", "Job", "JobStore"]

# The states of a job; the last three are final.
STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    settings TEXT NOT NULL,
    inputs TEXT NOT NULL,
    labels TEXT,
    iteration INTEGER NOT NULL DEFAULT 0,
    iterations INTEGER NOT NULL,
    losses TEXT,
    error TEXT,
    files TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0
)
"""
_JSON_FIELDS = ("settings", "inputs", "labels", "losses", "files")


@dataclasses.dataclass
class Job:
    """A job's record.

    Attributes:
        id: its name in the API, chosen by the server.
        state: one of :data:`STATES`.
        created, started, finished: Unix times (started: of the first attempt).
        settings: the settings fields as sent, ``[[name, value], ...]`` in order.
        inputs: the server's names of its input files: ``{"content", "styles", "masks", "initial"}``.
        labels: the candidates of a sweep, in order; None for a single image.
        iteration, iterations: progress (of the last record kept) and the run's length.
        losses: the loss terms of the saved image (``{term: value}``), or of each candidate of a sweep
            (``{label: {term: value}}``); None before the first.
        error: the one-line message of a failed job.
        files: the names of its result files.
        attempts: runs started (more than one after the server was stopped or killed mid-job).
        cancel: a cancel was asked for.
        seq: the order of creation.
    """

    id: str
    state: str
    created: float
    settings: list[list[str]]
    inputs: dict[str, Any]
    iterations: int
    labels: list[str] | None = None
    started: float | None = None
    finished: float | None = None
    iteration: int = 0
    losses: dict[str, Any] | None = None
    error: str | None = None
    files: list[str] = dataclasses.field(default_factory=list)
    attempts: int = 0
    cancel: bool = False
    seq: int = 0

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Job:
        values = {key: row[key] for key in row.keys()}  # noqa: SIM118 - sqlite3.Row is not a mapping
        for key in _JSON_FIELDS:
            values[key] = None if values[key] is None else json.loads(values[key])
        values["cancel"] = bool(values["cancel"])
        return cls(**values)


class JobStore:
    """The jobs in the SQLite file ``path`` (created with its table when missing)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute(_SCHEMA)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA synchronous=NORMAL")  # with WAL: safe when the process dies, fast
        return connection

    def _reader(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._readers.append(connection)
        return connection

    def close(self) -> None:
        """Closes every connection."""
        with self._lock:
            for connection in [*self._readers, self._writer]:
                connection.close()
            self._readers.clear()

    # -------------------------------------------------------------------------------------------------- reads

    def get(self, job_id: str) -> Job | None:
        row = self._reader().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job._from_row(row)

    def newest(self, limit: int = 200) -> list[Job]:
        """The newest ``limit`` jobs, newest first."""
        rows = self._reader().execute("SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [Job._from_row(row) for row in rows]

    def ids(self) -> set[str]:
        """The ids of every job."""
        return {row[0] for row in self._reader().execute("SELECT id FROM jobs")}

    # ------------------------------------------------------------------------------------------------- writes

    def add(self, job: Job) -> Job:
        """Records a new job; returns it with its ``seq``."""
        values = self._columns(dataclasses.asdict(job))
        values.pop("seq")
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._lock:
            cursor = self._writer.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", tuple(values.values()))
        job.seq = int(cursor.lastrowid or 0)
        return job

    def update(self, job_id: str, **fields: Any) -> None:
        """Sets ``fields`` of a job (names of :class:`Job` attributes)."""
        values = self._columns(fields)
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._lock:
            self._writer.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))

    def claim_next(self) -> Job | None:
        """The oldest queued job, now running (one more attempt), or None."""
        with self._lock, self._transaction():
            row = self._writer.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            self._writer.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, started = COALESCE(started, ?) "
                "WHERE id = ?",
                (time.time(), row[0]),
            )
            job = self._writer.execute("SELECT * FROM jobs WHERE id = ?", (row[0],)).fetchone()
        return Job._from_row(job)

    def cancel_queued(self, job_id: str) -> bool:
        """Cancels the job if it is still queued; whether it was."""
        with self._lock:
            cursor = self._writer.execute(
                "UPDATE jobs SET state = 'cancelled', cancel = 1, finished = ? WHERE id = ? AND state = 'queued'",
                (time.time(), job_id),
            )
        return cursor.rowcount == 1

    def recover(self) -> list[str]:
        """After a stop or a crash: every job left running is queued again (cancelled if a cancel was asked);
        returns the ids queued again, oldest first."""
        with self._lock, self._transaction():
            rows = self._writer.execute("SELECT id, cancel FROM jobs WHERE state = 'running' ORDER BY seq").fetchall()
            requeued = []
            for job_id, cancel in rows:
                if cancel:
                    self._writer.execute(
                        "UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ?", (time.time(), job_id)
                    )
                else:
                    self._writer.execute("UPDATE jobs SET state = 'queued' WHERE id = ?", (job_id,))
                    requeued.append(job_id)
        return requeued

    def _transaction(self) -> _Transaction:
        return _Transaction(self._writer)

    @staticmethod
    def _columns(fields: dict[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - {field.name for field in dataclasses.fields(Job)}
        if unknown:
            raise ValueError(f"not fields of a job: {', '.join(sorted(unknown))}")
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"not a state: {fields['state']}")
        values = {}
        for name, value in fields.items():
            if name in _JSON_FIELDS and value is not None:
                value = json.dumps(value)
            elif name == "cancel":
                value = int(bool(value))
            values[name] = value
        return values


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an exception) on an autocommit connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self.connection.execute("ROLLBACK" if kind is not None else "COMMIT")


def pairs(fields: Sequence[Sequence[str]]) -> Iterator[tuple[str, str]]:
    """``[[name, value], ...]`` as tuples."""
    for name, value in fields:
        yield str(name), str(value)
