"""``drctl unlock RUN_ID`` on this machine's locks: it removes only the named run's lock, and refuses while
that run's process is still alive here (the shared S3 case is in test_run_lab_resume.py)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.engine.lock import LockHolder, SqliteRunLock
from orchestrator.errors import ExitCode, LockHeld
from tests.support.cli import assert_one_line_error, drctl


def test_unlock_removes_only_the_named_runs_lock_and_never_a_live_one(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DRCTL_")}, "DRCTL_STATE_DIR": str(state)}
    locks = state / "locks.sqlite"
    elsewhere = replace(LockHolder.here("crashed-run", "failover"), host="bastion-7", pid=4242)
    alive_here = LockHolder.here("live-run", "drill")  # this test's own process: certainly alive
    for name, holder in (("runbook failover on stack prod", elsewhere), ("runbook drill on stack prod", alive_here)):
        lock = SqliteRunLock(locks, name)
        lock.acquire(holder)
        lock.close()

    assert_one_line_error(drctl("unlock", "no-such-run", env=env), ExitCode.NOT_FOUND, "holds no lock")
    assert_one_line_error(drctl("unlock", "live-run", env=env), ExitCode.LOCK_HELD, "still running here as pid")
    removed = drctl("unlock", "crashed-run", env=env)
    assert removed.returncode == 0, removed.stderr
    assert "removed runbook failover on stack prod, held by run crashed-run of failover by" in removed.stdout
    lock = SqliteRunLock(locks, "runbook drill on stack prod")
    try:
        with pytest.raises(LockHeld, match="live-run"):
            lock.acquire(LockHolder.here("second", "drill"))
    finally:
        lock.close()
