"""A copy interrupted at any instant resumes: nothing verified is sent twice, and the set never claims a
recovery point it does not hold. The copy runs as a real process that is killed (SIGKILL) or interrupted
(SIGINT, as Ctrl-C) while its transfers are in flight."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.backup.layout import DATA_PREFIX, POINTS_PREFIX
from orchestrator.errors import ExitCode
from orchestrator.providers.base import ObjectStore
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import MiB, backup_env, cli_copy, cli_restore, read_store, run_json, seed

POLL_S = 0.05  # between looks at the set while waiting for the copy to get going; bounded by a deadline


@dataclass(frozen=True)
class Journal:
    run_id: str
    keys: frozenset[str]
    finished: bool


def read_journal(state_dir: Path) -> list[Journal]:
    """The copy runs the journal holds, with the keys each has recorded as done."""
    db = sqlite3.connect(state_dir / "journal.sqlite")
    try:
        runs = db.execute("SELECT run_id, finished FROM copy_runs ORDER BY started").fetchall()
        return [
            Journal(
                str(run_id),
                frozenset(str(k) for (k,) in db.execute("SELECT key FROM copy_objects WHERE run_id=?", (run_id,))),
                finished is not None,
            )
            for run_id, finished in runs
        ]
    finally:
        db.close()


def start_copy(source_url: str, set_url: str, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    # --quiet: progress lines (every 10 s on a slow machine) would muddle the one-line checks below.
    args = ["backup", "copy", source_url, set_url, "--mode", "full", "--json", "--quiet", "--bwlimit", "10M"]
    with (logs / "stdout").open("wb") as out, (logs / "stderr").open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args], env=env, stdout=out, stderr=err)


def wait_for_blobs(proc: subprocess.Popen[bytes], set_store: ObjectStore, at_least: int, deadline_s: float) -> int:
    """Poll the set's data/ until ``at_least`` blobs are there; the copy must still be running by then."""
    deadline = time.monotonic() + deadline_s
    while True:
        present = sum(1 for _ in set_store.list(DATA_PREFIX))
        if present >= at_least:
            break
        assert proc.poll() is None, f"the copy ended (exit {proc.returncode}) before it could be interrupted"
        assert time.monotonic() < deadline, f"only {present} blobs after {deadline_s}s"
        time.sleep(POLL_S)
    assert proc.poll() is None, "the copy finished before it could be interrupted; slow it down further"
    return present


@pytest.fixture
def big_source(lab_factory: StoreFactory, s3_bucket: str) -> tuple[str, dict[str, bytes]]:
    url = f"s3://{s3_bucket}/src/"
    objects = {f"obj/{i:03d}.bin": os.urandom(MiB) for i in range(60)}
    seed(lab_factory.open(url), objects)
    return url, objects


def test_kill_9_mid_copy_then_rerun_resumes_exactly(
    big_source: tuple[str, dict[str, bytes]],
    lab_env: dict[str, str],
    lab_factory: StoreFactory,
    s3_bucket: str,
    az_container: str,
    tmp_path: Path,
) -> None:
    source_url, objects = big_source
    set_url = f"az://{az_container}/set/"
    set_store = lab_factory.open(set_url)
    state_dir = tmp_path / "state"
    env = backup_env(lab_env, state_dir)

    proc = start_copy(source_url, set_url, env, tmp_path)
    try:
        wait_for_blobs(proc, set_store, at_least=10, deadline_s=60)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # Data went in, but no recovery point: the set must never claim a point it does not hold.
    assert list(set_store.list(POINTS_PREFIX)) == []
    blobs_after_kill = sum(1 for _ in set_store.list(DATA_PREFIX))
    assert blobs_after_kill < len(objects)
    [interrupted] = read_journal(state_dir)
    assert not interrupted.finished
    assert 0 < len(interrupted.keys) <= blobs_after_kill
    journalled_bytes = sum(len(objects[k]) for k in interrupted.keys)

    summary = cli_copy(source_url, set_url, "full", env, "--bwlimit", "10M")
    resumed = len(interrupted.keys)
    assert summary["recovery_point"] != interrupted.run_id  # minted when sealed: the newest point
    assert summary["objects_resumed"] == resumed
    assert summary["objects_transferred"] == len(objects) - resumed
    assert summary["objects_skipped"] == resumed
    assert summary["bytes_transferred"] == sum(len(v) for v in objects.values()) - journalled_bytes
    assert summary["bytes_transferred"] == (len(objects) - resumed) * MiB
    assert summary["paths"]["resumed"] == resumed
    assert summary["paths"]["streamed"] == len(objects) - resumed

    assert [p.key for p in set_store.list(POINTS_PREFIX)] == [f"{POINTS_PREFIX}{summary['recovery_point']}.json"]
    assert read_journal(state_dir) == [Journal(interrupted.run_id, frozenset(), True)]
    verify = run_json("backup", "verify", set_url, "--deep", "--json", env=env)
    assert (verify["ok"], verify["objects_checked"], verify["missing"], verify["corrupt"], verify["extra"]) == (
        True,
        len(objects),
        [],
        [],
        [],
    )
    assert verify["bytes_read"] == len(objects) * MiB
    target_url = f"s3://{s3_bucket}/restored/"
    restored = cli_restore(set_url, target_url, env)
    assert restored["recovery_point"] == summary["recovery_point"]
    assert read_store(lab_factory.open(target_url)) == objects


def test_ctrl_c_mid_copy_exits_130_in_one_line_and_resumes(
    big_source: tuple[str, dict[str, bytes]],
    lab_env: dict[str, str],
    lab_factory: StoreFactory,
    az_container: str,
    tmp_path: Path,
) -> None:
    source_url, objects = big_source
    set_url = f"az://{az_container}/set/"
    set_store = lab_factory.open(set_url)
    state_dir = tmp_path / "state"
    env = backup_env(lab_env, state_dir)

    proc = start_copy(source_url, set_url, env, tmp_path)
    try:
        wait_for_blobs(proc, set_store, at_least=12, deadline_s=60)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == ExitCode.INTERRUPTED
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    stderr = (tmp_path / "stderr").read_text()
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == ["drctl: interrupted; run the same command again to resume"]
    assert (tmp_path / "stdout").read_text() == ""
    assert list(set_store.list(POINTS_PREFIX)) == []
    # The transfers in flight at the interrupt finished and were journalled: every blob in the set is resumable.
    [interrupted] = read_journal(state_dir)
    blobs = {o.key.rsplit("/", 1)[1] for o in set_store.list(DATA_PREFIX)}
    assert 0 < len(interrupted.keys) == len(blobs) < len(objects)

    summary = cli_copy(source_url, set_url, "full", env)
    assert summary["recovery_point"] != interrupted.run_id  # minted when sealed: the newest point
    assert summary["objects_resumed"] == len(interrupted.keys)
    assert summary["bytes_transferred"] == (len(objects) - len(interrupted.keys)) * MiB
    verify = run_json("backup", "verify", set_url, "--json", env=env)
    assert (verify["ok"], verify["objects_checked"], verify["extra"]) == (True, len(objects), [])
