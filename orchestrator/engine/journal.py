"""The durable run journal: what every run did, step by step, attempt by attempt.

SQLite in drctl's state directory (``runs.sqlite``), in WAL mode so ``drctl status`` can read while a run
writes, and each change committed at once so a run killed at any instant can be resumed from what it
recorded. The schema is versioned with ``PRAGMA user_version``; a journal from a newer drctl is refused
rather than misread. Nothing here redacts: callers pass text through ``engine.redact`` first, and the
journal never receives environment values (``params`` are the runbook's declared parameters only).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from orchestrator.errors import StateError

SCHEMA_VERSION = 3
"""2 added ``drill_resources``; a version-1 journal gains the table when opened (CREATE IF NOT EXISTS).
3 added ``runs.disaster_at`` (the instant a report measures RPO from, when ``--disaster-at`` gave one); an
older journal gains the column, empty for its runs, when opened (``_add_missing_columns``)."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    runbook_path TEXT NOT NULL,
    runbook_sha256 TEXT NOT NULL,
    runbook_name TEXT NOT NULL,
    params TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    disaster_at TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    step_id TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started TEXT,
    finished TEXT,
    outputs TEXT,
    error TEXT,
    PRIMARY KEY (run_id, step_id)
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT,
    error TEXT,
    PRIMARY KEY (run_id, step_id, number)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    at TEXT NOT NULL,
    step_id TEXT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drill_resources (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    location TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    created TEXT NOT NULL,
    outcome TEXT,
    cleaned TEXT,
    note TEXT,
    UNIQUE (run_id, kind, location, resource_id)
);
CREATE TABLE IF NOT EXISTS approvals (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    from_account TEXT NOT NULL,
    at TEXT NOT NULL,
    comment TEXT,
    PRIMARY KEY (run_id, step_id)
);
"""
_ADDED_COLUMNS = (("runs", "disaster_at", "TEXT"),)
"""Columns added after a table was first shipped: ``CREATE TABLE IF NOT EXISTS`` leaves an existing table as it
was, so an older journal gains them with ``ALTER TABLE`` (nullable, so its rows read as before)."""
# Columns named, not ``*``: an older journal that gained a column by ALTER TABLE has it last, whatever the order
# of the CREATE above.
_INSERT_RUN = (
    "INSERT INTO runs (run_id, runbook_path, runbook_sha256, runbook_name, params, mode, status, started, finished, "
    "disaster_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"
)
_SELECT_RUN = (
    "SELECT run_id, runbook_path, runbook_sha256, runbook_name, params, mode, status, started, finished, "
    "disaster_at FROM runs WHERE run_id = ?"
)
_SELECT_RUNS = (
    "SELECT run_id, runbook_path, runbook_sha256, runbook_name, params, mode, status, started, finished, "
    "disaster_at FROM runs ORDER BY started DESC LIMIT ?"
)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially_failed"
    INTERRUPTED = "interrupted"


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    runbook_path: str
    runbook_sha256: str
    runbook_name: str
    params: dict[str, Any]
    mode: str
    status: RunStatus
    started: str
    finished: str | None
    disaster_at: str | None = None
    """The disaster instant given with ``--disaster-at`` (ISO 8601, with its offset), or None: the run's start."""


@dataclass(frozen=True)
class StepRecord:
    step_id: str
    status: StepState
    attempts: int
    started: str | None
    finished: str | None
    outputs: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class EventRecord:
    at: str
    step_id: str | None
    kind: str
    message: str


@dataclass(frozen=True)
class DrillResource:
    """Something a drill created (or changed) that its cleanup must remove (or put back).

    ``detail`` is the kind's own JSON (for a DNS record, the values it had before). ``outcome`` is None until
    a cleanup acted on it: ``removed``, ``already gone`` or ``failed`` (a failed one is tried again by the next
    cleanup)."""

    run_id: str
    kind: str
    location: str
    resource_id: str
    detail: dict[str, Any]
    created: str
    outcome: str | None
    cleaned: str | None
    note: str | None


@dataclass(frozen=True)
class Approval:
    """A person's go-ahead for one gated step of one run, given with ``drctl approve``. ``approved_by`` is the
    name they gave (``--by``, e.g. a CI actor) or their account; ``from_account`` is always the account and host
    the command ran as, so a name given by hand is never the only record."""

    run_id: str
    step_id: str
    approved_by: str
    from_account: str
    at: str
    comment: str | None

    def describe(self) -> str:
        via = "" if self.approved_by == self.from_account else f" (from {self.from_account})"
        said = f": {self.comment}" if self.comment else ""
        return f"approved by {self.approved_by}{via} at {self.at} with drctl approve{said}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class RunJournal:
    """One connection shared by the executor's threads; a lock serialises writes, since a sqlite3
    connection is not safe to use from two threads at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                self._db.close()
                raise StateError(
                    f"{path} was written by a newer drctl (schema {version}, this one knows {SCHEMA_VERSION})"
                )
            self._db.executescript(_SCHEMA)
            self._add_missing_columns()
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as err:
            raise StateError(f"cannot open the run journal {path}: {err}") from err
        self._lock = threading.Lock()
        self._fence: Callable[[], None] | None = None

    def fence(self, check: Callable[[], None] | None) -> None:
        """Call ``check`` before every write (None: stop): a run whose shared lock was lost raises there, so it
        records nothing more, and acts on nothing more, once another run may hold the lock."""
        self._fence = check

    def _columns(self, table: str) -> set[str]:
        return {str(row[1]) for row in self._db.execute(f"PRAGMA table_info({table})")}

    def _add_missing_columns(self) -> None:
        for table, column, kind in _ADDED_COLUMNS:
            if column in self._columns(table):
                continue
            try:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError:
                if column not in self._columns(table):  # else another process added it first
                    raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        if self._fence is not None:
            self._fence()
        with self._lock:
            try:
                self._db.execute(sql, args)
            except sqlite3.Error as err:
                raise StateError(f"cannot write the run journal {self.path}: {err}") from err

    # -- writes ---------------------------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        path: str,
        sha256: str,
        name: str,
        params: Mapping[str, Any],
        mode: str,
        *,
        disaster_at: str | None = None,
    ) -> None:
        """``disaster_at``: when the disaster struck (ISO 8601 with an offset), if not at the run's start."""
        self._write(
            _INSERT_RUN,
            (
                run_id,
                path,
                sha256,
                name,
                json.dumps(dict(params), sort_keys=True),
                mode,
                RunStatus.RUNNING,
                _now(),
                disaster_at,
            ),
        )

    def reopen_run(self, run_id: str) -> None:
        self._write("UPDATE runs SET status = ?, finished = NULL WHERE run_id = ?", (RunStatus.RUNNING, run_id))

    def finish_run(self, run_id: str, status: RunStatus) -> None:
        self._write("UPDATE runs SET status = ?, finished = ? WHERE run_id = ?", (status, _now(), run_id))

    def step_state(self, run_id: str, step_id: str, status: StepState, *, error: str | None = None) -> None:
        finished = _now() if status not in (StepState.PENDING, StepState.RUNNING) else None
        started = _now() if status == StepState.RUNNING else None
        self._write(
            "INSERT INTO steps (run_id, step_id, status, started, finished, error) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, step_id) DO UPDATE SET status = excluded.status, "
            "started = COALESCE(excluded.started, steps.started), finished = excluded.finished, "
            "error = excluded.error",
            (run_id, step_id, status, started, finished, error),
        )

    def step_succeeded(self, run_id: str, step_id: str, outputs: Mapping[str, Any]) -> None:
        self._write(
            "UPDATE steps SET status = ?, finished = ?, outputs = ?, error = NULL WHERE run_id = ? AND step_id = ?",
            (StepState.SUCCEEDED, _now(), json.dumps(dict(outputs), sort_keys=True), run_id, step_id),
        )

    def start_attempt(self, run_id: str, step_id: str) -> int:
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE run_id = ? AND step_id = ?",
                    (run_id, step_id),
                ).fetchone()
                number = int(row[0])
                self._db.execute(
                    "INSERT INTO attempts (run_id, step_id, number, started) VALUES (?, ?, ?, ?)",
                    (run_id, step_id, number, _now()),
                )
                self._db.execute(
                    "UPDATE steps SET attempts = attempts + 1 WHERE run_id = ? AND step_id = ?", (run_id, step_id)
                )
            except sqlite3.Error as err:
                raise StateError(f"cannot write the run journal {self.path}: {err}") from err
        return number

    def finish_attempt(self, run_id: str, step_id: str, number: int, status: str, error: str | None) -> None:
        self._write(
            "UPDATE attempts SET finished = ?, status = ?, error = ? WHERE run_id = ? AND step_id = ? AND number = ?",
            (_now(), status, error, run_id, step_id, number),
        )

    def event(self, run_id: str, kind: str, message: str, step_id: str | None = None) -> None:
        self._write(
            "INSERT INTO events (run_id, at, step_id, kind, message) VALUES (?, ?, ?, ?, ?)",
            (run_id, _now(), step_id, kind, message),
        )

    def record_resource(
        self, run_id: str, kind: str, location: str, resource_id: str, detail: Mapping[str, Any] | None = None
    ) -> None:
        """Note a resource a drill made, as soon as it exists; recording it twice keeps the first detail (a
        repeated step must not overwrite the state the first attempt saw before it changed anything)."""
        self._write(
            "INSERT INTO drill_resources (run_id, kind, location, resource_id, detail, created) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, kind, location, resource_id) DO NOTHING",
            (run_id, kind, location, resource_id, json.dumps(dict(detail or {}), sort_keys=True), _now()),
        )

    def resource_cleaned(
        self, run_id: str, kind: str, location: str, resource_id: str, outcome: str, note: str | None = None
    ) -> None:
        self._write(
            "UPDATE drill_resources SET outcome = ?, cleaned = ?, note = ? "
            "WHERE run_id = ? AND kind = ? AND location = ? AND resource_id = ?",
            (outcome, _now(), note, run_id, kind, location, resource_id),
        )

    def approve(self, run_id: str, step_id: str, by: str, from_account: str, comment: str | None) -> Approval:
        """Record an approval; a second one for the same step keeps the first (who approved, and when)."""
        self._write(
            "INSERT INTO approvals (run_id, step_id, approved_by, from_account, at, comment) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, step_id) DO NOTHING",
            (run_id, step_id, by, from_account, _now(), comment),
        )
        approval = self.approval(run_id, step_id)
        assert approval is not None  # just written, or written before
        return approval

    # -- reads ----------------------------------------------------------------------------------------------

    def approval(self, run_id: str, step_id: str) -> Approval | None:
        rows = self._rows(
            "SELECT run_id, step_id, approved_by, from_account, at, comment FROM approvals "
            "WHERE run_id = ? AND step_id = ?",
            (run_id, step_id),
        )
        return Approval(*rows[0]) if rows else None

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(sql, args).fetchall())
            except sqlite3.Error as err:
                raise StateError(f"cannot read the run journal {self.path}: {err}") from err

    def run(self, run_id: str) -> RunRecord | None:
        rows = self._rows(_SELECT_RUN, (run_id,))
        return _run_record(rows[0]) if rows else None

    def runs(self, limit: int = 20) -> list[RunRecord]:
        return [_run_record(r) for r in self._rows(_SELECT_RUNS, (limit,))]

    def steps(self, run_id: str) -> dict[str, StepRecord]:
        rows = self._rows(
            "SELECT step_id, status, attempts, started, finished, outputs, error FROM steps WHERE run_id = ?",
            (run_id,),
        )
        return {
            r[0]: StepRecord(r[0], StepState(r[1]), int(r[2]), r[3], r[4], json.loads(r[5]) if r[5] else {}, r[6])
            for r in rows
        }

    def events(self, run_id: str) -> list[EventRecord]:
        rows = self._rows("SELECT at, step_id, kind, message FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
        return [EventRecord(*r) for r in rows]

    def resources(self, run_id: str) -> list[DrillResource]:
        """The run's drill resources in the order they were made."""
        rows = self._rows(
            "SELECT run_id, kind, location, resource_id, detail, created, outcome, cleaned, note "
            "FROM drill_resources WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        return [DrillResource(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7], r[8]) for r in rows]


def _run_record(r: tuple[Any, ...]) -> RunRecord:
    return RunRecord(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], RunStatus(r[6]), r[7], r[8], r[9])


def journal_path(state: Path) -> Path:
    return state / "runs.sqlite"
