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
