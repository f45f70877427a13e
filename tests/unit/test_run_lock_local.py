"""The local run lock across real processes: SQLite's own locking, no fakes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.engine.lock import LockHolder, SqliteRunLock
from orchestrator.errors import LockHeld


def holder(run_id: str, pid: int | None = None) -> LockHolder:
    h = LockHolder.here(run_id, "failover.yaml")
    return LockHolder(h.run_id, h.runbook, h.host, pid if pid is not None else h.pid, h.user, h.acquired)


def test_second_run_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first, second = SqliteRunLock(tmp_path / "l.db", "failover@lab"), SqliteRunLock(tmp_path / "l.db", "failover@lab")
    first.acquire(holder("run-1"))
    with pytest.raises(LockHeld, match=r"locked by run run-1 of failover.yaml by .*--force-unlock"):
        second.acquire(holder("run-2"))
    first.release(holder("run-1"))
    second.acquire(holder("run-2"))


def test_different_targets_do_not_block_each_other(tmp_path: Path) -> None:
    SqliteRunLock(tmp_path / "l.db", "failover@lab").acquire(holder("run-1"))
    SqliteRunLock(tmp_path / "l.db", "failover@prod").acquire(holder("run-2"))


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = SqliteRunLock(tmp_path / "l.db", "failover@lab")
    lock.acquire(holder("crashed", pid=int(dead.stdout)))
    lock.acquire(holder("next"))
    with pytest.raises(LockHeld, match="run next"):
        SqliteRunLock(tmp_path / "l.db", "failover@lab").acquire(holder("third"))


def test_release_by_another_run_does_nothing_and_force_unlock_does(tmp_path: Path) -> None:
    lock = SqliteRunLock(tmp_path / "l.db", "failover@lab")
    lock.acquire(holder("run-1"))
    lock.release(holder("intruder"))
    with pytest.raises(LockHeld):
        lock.acquire(holder("run-2"))
    removed = lock.force_unlock()
    assert removed is not None
    assert removed.run_id == "run-1"
    lock.acquire(holder("run-2"))
