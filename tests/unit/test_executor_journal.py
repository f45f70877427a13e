"""The run journal: versioned schema, WAL, and what it records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestrator.engine.journal import SCHEMA_VERSION, RunJournal, RunStatus, StepState
from orchestrator.errors import StateError


def test_records_a_run_its_steps_attempts_and_events(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path / "runs.sqlite")
    journal.start_run("r1", "/rb.yaml", "ab" * 32, "rb", {"copies": 4}, "drill")
    journal.step_state("r1", "a", StepState.PENDING)
    journal.step_state("r1", "a", StepState.RUNNING)
    assert journal.start_attempt("r1", "a") == 1
    journal.finish_attempt("r1", "a", 1, "failed", "throttled")
    assert journal.start_attempt("r1", "a") == 2
    journal.step_succeeded("r1", "a", {"recovery_point": "p1"})
    journal.event("r1", "log", "hello", "a")
    journal.finish_run("r1", RunStatus.PARTIALLY_FAILED)

    run = journal.run("r1")
    assert run is not None
    assert (run.params, run.mode, run.status) == ({"copies": 4}, "drill", RunStatus.PARTIALLY_FAILED)
    assert run.finished is not None
    step = journal.steps("r1")["a"]
    assert (step.status, step.attempts, step.outputs) == (StepState.SUCCEEDED, 2, {"recovery_point": "p1"})
    assert step.started is not None
    assert [(e.kind, e.message, e.step_id) for e in journal.events("r1")] == [("log", "hello", "a")]
    assert [r.run_id for r in journal.runs()] == ["r1"]
    journal.close()


def test_wal_and_schema_version(tmp_path: Path) -> None:
    RunJournal(tmp_path / "runs.sqlite").close()
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StateError, match="newer drctl"):
        RunJournal(tmp_path / "runs.sqlite")


V2_SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, runbook_path TEXT NOT NULL, runbook_sha256 TEXT NOT NULL,
    runbook_name TEXT NOT NULL, params TEXT NOT NULL, mode TEXT NOT NULL, status TEXT NOT NULL,
    started TEXT NOT NULL, finished TEXT);
INSERT INTO runs VALUES ('old', '/rb.yaml', 'ab', 'rb', '{}', 'drill', 'succeeded', '2026-01-01T00:00:00+00:00',
    '2026-01-01T00:10:00+00:00');
PRAGMA user_version=2;
"""


def test_the_disaster_instant_is_journaled_with_the_run(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path / "runs.sqlite")
    journal.start_run("r1", "/rb.yaml", "ab" * 32, "rb", {}, "drill", disaster_at="2026-03-01T11:59:00+00:00")
    journal.start_run("r2", "/rb.yaml", "ab" * 32, "rb", {}, "drill")
    journal.close()
    again = RunJournal(tmp_path / "runs.sqlite")
    try:
        r1, r2 = again.run("r1"), again.run("r2")
        assert r1 is not None
        assert r2 is not None
        assert (r1.disaster_at, r2.disaster_at) == ("2026-03-01T11:59:00+00:00", None)
        assert {r.run_id: r.disaster_at for r in again.runs()} == {"r1": "2026-03-01T11:59:00+00:00", "r2": None}
    finally:
        again.close()


def test_a_schema_2_journal_gains_the_disaster_at_column_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    db = sqlite3.connect(path)
    db.executescript(V2_SCHEMA)
    db.close()

    first, second = RunJournal(path), RunJournal(path)  # a second opener finds the column already there
    try:
        old = first.run("old")
        assert old is not None
        assert (old.status, old.finished, old.disaster_at) == (RunStatus.SUCCEEDED, "2026-01-01T00:10:00+00:00", None)
        second.start_run("new", "/rb.yaml", "cd", "rb", {}, "failover", disaster_at="2026-01-02T00:00:00+00:00")
        new = first.run("new")
        assert new is not None
        assert new.disaster_at == "2026-01-02T00:00:00+00:00"
    finally:
        first.close()
        second.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert "disaster_at" in [row[1] for row in db.execute("PRAGMA table_info(runs)")]
    db.close()
