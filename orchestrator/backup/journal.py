"""The copy journal: which objects of an unfinished backup run are already in the set and verified.

It lives in SQLite in drctl's state directory, one row per finished object, committed as each object
completes, so a run killed at any instant (Ctrl-C, kill -9, a lost network) resumes from exactly what it
finished. Runs are matched by (set, source, mode); a finished run is never resumed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

from orchestrator.backup.manifest import ObjectEntry
from orchestrator.errors import StateError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS copy_runs (
    run_id TEXT PRIMARY KEY,
    set_url TEXT NOT NULL,
    source_url TEXT NOT NULL,
    mode TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT
);
CREATE TABLE IF NOT EXISTS copy_objects (
    run_id TEXT NOT NULL REFERENCES copy_runs(run_id),
    key TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
"""


def state_dir(env: Mapping[str, str]) -> Path:
    """``DRCTL_STATE_DIR``, else ``$XDG_STATE_HOME/drctl``, else ``~/.local/state/drctl``."""
    if env.get("DRCTL_STATE_DIR"):
        return Path(env["DRCTL_STATE_DIR"])
    base = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return base / "drctl"


class CopyJournal:
    def __init__(self, path: Path) -> None:
        fix = "move it aside: it is only needed to resume an interrupted copy"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread=False: workers record objects; SQLite serialises the writes.
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StateError(
                    f"copy journal {path} has schema {version}, this drctl knows {SCHEMA_VERSION}; "
                    f"upgrade drctl or {fix}"
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"copy journal {path} is unusable ({exc}); {fix}") from exc

    def _execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            # A full disk, an I/O error, a lock held too long: the copy stops with one line, resumable later.
            raise StateError(f"the copy journal failed ({exc}); free disk space or move it aside, then re-run") from exc

    def unfinished_run(self, set_url: str, source_url: str, mode: str) -> str | None:
        row = self._execute(
            "SELECT run_id FROM copy_runs WHERE set_url=? AND source_url=? AND mode=? AND finished IS NULL "
            "ORDER BY started DESC LIMIT 1",
            (set_url, source_url, mode),
        ).fetchone()
        return str(row[0]) if row else None

    def start(self, run_id: str, set_url: str, source_url: str, mode: str, started: str) -> None:
        self._execute(
            "INSERT OR IGNORE INTO copy_runs(run_id, set_url, source_url, mode, started) VALUES (?,?,?,?,?)",
            (run_id, set_url, source_url, mode, started),
        )

    def done_objects(self, run_id: str) -> dict[str, ObjectEntry]:
        rows = self._execute("SELECT key, entry FROM copy_objects WHERE run_id=?", (run_id,))
        try:
            return {key: ObjectEntry.from_json(entry) for key, entry in rows}
        except ValueError as exc:
            raise StateError(
                f"the copy journal has an unreadable entry ({exc}); move it aside and re-run the copy from the start"
            ) from exc

    def record(self, run_id: str, entry: ObjectEntry) -> None:
        self._execute(
            "INSERT OR REPLACE INTO copy_objects(run_id, key, entry) VALUES (?,?,?)",
            (run_id, entry.key, entry.to_json()),
        )

    def finish(self, run_id: str, finished: str) -> None:
        self._execute("UPDATE copy_runs SET finished=? WHERE run_id=?", (finished, run_id))
        # The rows served resume only; the manifest in the set is the record from now on.
        self._execute("DELETE FROM copy_objects WHERE run_id=?", (run_id,))

    def close(self) -> None:
        self._db.close()
