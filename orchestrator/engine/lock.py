"""Run locks: two runs of the same runbook against the same target are refused, naming the holder.

- ``SqliteRunLock`` serialises runs on one machine (state directory). A lock whose holder process is gone
  from this host is stale and taken over, since nothing can still be running under it.
- ``S3Lease`` (``s3_lease.py``) is for shared state: a lease in one S3 object, taken and released with
  conditional writes, renewed by a heartbeat, taken over once expired, and fenced by a token.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from orchestrator.errors import LockHeld, StateError

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class LockHolder:
    run_id: str
    runbook: str
    host: str
    pid: int
    user: str
    acquired: str

    @classmethod
    def here(cls, run_id: str, runbook: str, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> LockHolder:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # a uid with no passwd entry (containers) and no USER/LOGNAME
            user = str(os.getuid())
        return cls(run_id, runbook, socket.gethostname(), os.getpid(), user, now().isoformat())

    def describe(self) -> str:
        return f"run {self.run_id} of {self.runbook} by {self.user}@{self.host} (pid {self.pid}) since {self.acquired}"


class RunLock(Protocol):
    def acquire(self, holder: LockHolder) -> None:
        """Take the lock or raise ``LockHeld`` naming the current holder and how to release it."""
        ...

    def release(self, holder: LockHolder) -> None:
        """Release the lock if ``holder`` still holds it; releasing a lock held by another run does nothing."""
        ...

    def force_unlock(self) -> LockHolder | None:
        """Remove the lock whoever holds it; returns the holder that was removed, if any."""
        ...

    def unlock(self, run_id: str) -> LockHolder | None:
        """Remove the lock only if ``run_id`` holds it (``drctl unlock RUN_ID``); returns that holder."""
        ...

    def check(self) -> None:
        """Raise ``LockLost`` if this process no longer certainly holds the lock: the journal's fence."""
        ...


FORCE_HINT = "wait for it, or run with --force-unlock (only if that run is really gone)"


def _held(name: str, holder: LockHolder, hint: str) -> LockHeld:
    return LockHeld(f"{name} is locked by {holder.describe()}; {hint}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def locks_path(state: Path) -> Path:
    """The run locks of this host, in drctl's state directory: shared by runs, drills and backups."""
    return state / "locks.sqlite"


class SqliteRunLock:
    def __init__(self, db_path: Path, name: str, hint: str = FORCE_HINT) -> None:
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(db_path, isolation_level=None, timeout=30)
            self._db.execute("CREATE TABLE IF NOT EXISTS run_locks (name TEXT PRIMARY KEY, holder TEXT NOT NULL)")
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"lock database {db_path} is unusable ({exc}); move it aside") from exc
        self._name = name
        self._hint = hint

    def _current(self) -> LockHolder | None:
        row = self._db.execute("SELECT holder FROM run_locks WHERE name=?", (self._name,)).fetchone()
        return LockHolder(**json.loads(row[0])) if row else None

    def acquire(self, holder: LockHolder) -> None:
        # BEGIN IMMEDIATE takes SQLite's write lock first, so check-then-insert is atomic across processes.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._take(holder)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _take(self, holder: LockHolder) -> None:
        current = self._current()
        if current is not None and not (current.host == holder.host and not _pid_alive(current.pid)):
            raise _held(self._name, current, self._hint)
        self._db.execute(
            "INSERT OR REPLACE INTO run_locks(name, holder) VALUES (?, ?)", (self._name, json.dumps(asdict(holder)))
        )

    def release(self, holder: LockHolder) -> None:
        self._db.execute(
            "DELETE FROM run_locks WHERE name=? AND json_extract(holder, '$.run_id')=?", (self._name, holder.run_id)
        )

    def force_unlock(self) -> LockHolder | None:
        current = self._current()
        self._db.execute("DELETE FROM run_locks WHERE name=?", (self._name,))
        return current

    def unlock(self, run_id: str) -> LockHolder | None:
        current = self._current()
        if current is None or current.run_id != run_id:
            return None
        self.release(current)
        return current

    def check(self) -> None:
        """A lock on this host cannot be taken over while its holder's process lives: nothing to check."""

    def close(self) -> None:
        self._db.close()


def unlock_local(db_path: Path, run_id: str) -> list[tuple[str, LockHolder]]:
    """``drctl unlock RUN_ID`` on this host: remove the locks ``run_id`` holds, unless its process still lives
    here (then the run is really running, and unlocking would let a second one fight it)."""
    if not db_path.exists():
        return []
    removed: list[tuple[str, LockHolder]] = []
    lock = SqliteRunLock(db_path, "")
    try:
        rows = lock._db.execute("SELECT name, holder FROM run_locks").fetchall()
        for name, text in rows:
            holder = LockHolder(**json.loads(text))
            if holder.run_id != run_id:
                continue
            if holder.host == socket.gethostname() and _pid_alive(holder.pid):
                raise LockHeld(f"run {run_id} is still running here as pid {holder.pid}; stop it (Ctrl-C) instead")
            lock._db.execute("DELETE FROM run_locks WHERE name=? AND holder=?", (name, text))
            removed.append((name, holder))
    except sqlite3.Error as exc:
        raise StateError(f"lock database {db_path} is unusable ({exc}); move it aside") from exc
    finally:
        lock.close()
    return removed


def live_local_runs(db_path: Path) -> set[str]:
    """Run ids holding a lock in ``db_path`` from a process still alive on this host: runs certainly in
    progress, whose resources a sweep for leftovers must not touch. A missing lock file holds no runs."""
    if not db_path.exists():
        return set()
    try:
        db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT holder FROM run_locks").fetchall()
        finally:
            db.close()
    except sqlite3.Error as err:
        raise StateError(f"cannot read the run locks in {db_path}: {err}") from err
    here = socket.gethostname()
    live: set[str] = set()
    for (text,) in rows:
        try:
            holder = LockHolder(**json.loads(text))
        except (ValueError, TypeError):
            continue
        if holder.host == here and _pid_alive(holder.pid):
            live.add(holder.run_id)
    return live
