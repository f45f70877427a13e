"""Sharded copies on the lab (issue #18): four ``drctl backup copy --shard I/4`` processes run side by side from
S3 (LocalStack) into one Azure (Azurite) set, as four pods of an Indexed Job would, and ``drctl backup seal``
makes one recovery point of them. Its content must equal a single-process copy of the same source; a shard
killed with SIGKILL leaves the seal refusing, naming it, until that shard is run again (and resumes), and a
shard rerun with no journal of its first run (another pod) resumes from the progress it saved in the set."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.backup.crypto import KeySource
from orchestrator.backup.layout import POINTS_PREFIX
from orchestrator.backup.manifest import RecoveryPoint
from orchestrator.backup.sets import open_set
from orchestrator.backup.shard_progress import load_progress
from orchestrator.backup.shards import SHARDS_PREFIX, Shard
from orchestrator.errors import ExitCode
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import backup_env, run_json, seed
from tests.support.cli import assert_one_line_error, drctl

SHARDS = 4
POLL_S = 0.05  # between looks at the journal while waiting for the shard to get going; bounded by a deadline


@pytest.fixture
def source(lab_factory: StoreFactory, s3_bucket: str) -> str:
    url = f"s3://{s3_bucket}/vault-src/"
    # Sizes from empty to 3 MiB, keys in several prefixes: what a real source looks like, in a few seconds.
    objects = {
        f"{p}/{i:03d}.bin": os.urandom((i * 7919) % (48 * 1024)) for p in ("db", "logs", "etc") for i in range(40)
    }
    objects |= {f"big/{i}.bin": os.urandom(3 * 1024 * 1024) for i in range(2)}
    seed(lab_factory.open(url), objects)
    return url


def _content(point: RecoveryPoint) -> dict[str, tuple[int, str]]:
    return {e.key: (e.size, e.sha256) for e in point.objects}


def _only_point(lab_factory: StoreFactory, set_url: str) -> RecoveryPoint:
    bset = open_set(lab_factory.open(set_url), KeySource(), {})
    points = bset.points()
    assert len(points) == 1, [p.id for p in points]
    return points[0]


def _start_shard(
    source: str, set_url: str, index: int, env: dict[str, str], logs: Path, *extra: str
) -> subprocess.Popen[bytes]:
    args = ["backup", "copy", source, set_url, "--mode", "full", "--shard", f"{index}/{SHARDS}", "--json", "--quiet"]
    with (logs / f"shard{index}.out").open("wb") as out, (logs / f"shard{index}.err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *args, "--shard-group", "round-1", *extra],
            env=env,
            stdout=out,
            stderr=err,
        )


def _finished(proc: subprocess.Popen[bytes], logs: Path, index: int) -> dict[str, object]:
    assert proc.wait(timeout=180) == 0, (logs / f"shard{index}.err").read_text()
    doc = json.loads((logs / f"shard{index}.out").read_text())
    assert isinstance(doc, dict)
    return doc


def _journalled(state: Path, index: int) -> int:
    """Objects shard ``index``'s unfinished run has recorded as done (0 before the run exists)."""
    if not (state / "journal.sqlite").exists():
        return 0
    db = sqlite3.connect(state / "journal.sqlite", timeout=30)
    try:
        row = db.execute(
            "SELECT COUNT(*) FROM copy_objects JOIN copy_runs USING (run_id) "
            "WHERE copy_runs.source_url LIKE ? AND finished IS NULL",
            (f"% (shard {index}/{SHARDS} of round-1)",),
        ).fetchone()
        return int(row[0])
    except sqlite3.OperationalError:  # the journal's tables are made by the first shard to start
        return 0
    finally:
        db.close()


def test_four_shards_in_parallel_seal_into_the_point_one_process_makes(
    source: str, lab_env: dict[str, str], lab_factory: StoreFactory, az_container: str, tmp_path: Path
) -> None:
    env = backup_env(lab_env, tmp_path / "state")
    sharded, single = f"az://{az_container}/sharded/", f"az://{az_container}/single/"
    run_json("backup", "copy", source, single, "--mode", "full", "--json", "--quiet", env=env)

    refused = drctl("backup", "copy", source, sharded, "--mode", "full", "--shard", f"0/{SHARDS}", env=env)
    assert_one_line_error(refused, ExitCode.INVALID_INPUT, "drctl backup init")
    assert drctl("backup", "init", sharded, env=env).returncode == 0

    procs = [_start_shard(source, sharded, i, env, tmp_path) for i in range(SHARDS)]
    shards = [_finished(p, tmp_path, i) for i, p in enumerate(procs)]
    # Every shard copied a share, and no point exists before the seal: only shard manifests.
    assert all(int(str(s["objects_transferred"])) > 0 for s in shards), shards
    set_store = lab_factory.open(sharded)
    assert not list(set_store.list(POINTS_PREFIX))
    assert len(list(set_store.list(SHARDS_PREFIX))) == SHARDS

    sealed = run_json("backup", "seal", sharded, "--shards", str(SHARDS), "--shard-group", "round-1", "--json", env=env)
    point = _only_point(lab_factory, sharded)
    assert sealed["recovery_point"] == point.id
    assert _content(point) == _content(_only_point(lab_factory, single))
    assert point.totals.objects_transferred == sum(int(str(s["objects_transferred"])) for s in shards)
    assert not list(set_store.list(SHARDS_PREFIX)), "the seal leaves no shard manifest behind"
    verified = run_json("backup", "verify", sharded, "--deep", "--json", env=env)
    assert verified["ok"] is True


def test_a_killed_shard_stops_the_seal_until_it_is_run_again(
    source: str, lab_env: dict[str, str], lab_factory: StoreFactory, az_container: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = backup_env(lab_env, state)
    set_url, single = f"az://{az_container}/sharded/", f"az://{az_container}/single/"
    assert drctl("backup", "init", set_url, env=env).returncode == 0
    victim = 2
    # The victim is slowed so that it is certainly mid-copy when it is killed; the others run at full speed.
    procs = {
        i: _start_shard(source, set_url, i, env, tmp_path, *(("--bwlimit", "256K") if i == victim else ()))
        for i in range(SHARDS)
    }
    deadline = time.monotonic() + 60
    while _journalled(state, victim) < 2:
        assert procs[victim].poll() is None, (tmp_path / f"shard{victim}.err").read_text()
        assert time.monotonic() < deadline, "the shard journalled nothing within 60 s"
        time.sleep(POLL_S)
    procs[victim].send_signal(signal.SIGKILL)
    procs[victim].wait(timeout=30)
    for i in range(SHARDS):
        if i != victim:
            _finished(procs[i], tmp_path, i)

    refused = drctl("backup", "seal", set_url, "--shards", str(SHARDS), "--shard-group", "round-1", env=env)
    assert_one_line_error(refused, ExitCode.NOT_FOUND, f"shard {victim} of {SHARDS}", "no recovery point was written")
    assert not list(lab_factory.open(set_url).list(POINTS_PREFIX))

    rerun = _start_shard(source, set_url, victim, env, tmp_path)
    resumed = _finished(rerun, tmp_path, victim)
    assert int(str(resumed["objects_resumed"])) >= 2, resumed
    run_json("backup", "seal", set_url, "--shards", str(SHARDS), "--shard-group", "round-1", "--json", env=env)

    run_json("backup", "copy", source, single, "--mode", "full", "--json", "--quiet", env=env)
    assert _content(_only_point(lab_factory, set_url)) == _content(_only_point(lab_factory, single))
    assert run_json("backup", "verify", set_url, "--deep", "--json", env=env)["ok"] is True


def test_a_shard_rerun_on_another_machine_resumes_from_its_progress_in_the_set(
    source: str, lab_env: dict[str, str], lab_factory: StoreFactory, az_container: str, tmp_path: Path
) -> None:
    # Two state directories stand for two pods: the rerun has no journal of the first run, as on an engine.
    first, second = backup_env(lab_env, tmp_path / "pod-a"), backup_env(lab_env, tmp_path / "pod-b")
    set_url = f"az://{az_container}/sharded/"
    assert drctl("backup", "init", set_url, env=first).returncode == 0
    bset = open_set(lab_factory.open(set_url), KeySource(), {})
    shard = Shard(1, SHARDS, "round-1")
    proc = _start_shard(source, set_url, 1, first, tmp_path, "--bwlimit", "256K", "--checkpoint-every", "1s")
    deadline = time.monotonic() + 60
    while (progress := load_progress(bset, shard)) is None or len(progress.objects) < 2:
        assert proc.poll() is None, (tmp_path / "shard1.err").read_text()
        assert time.monotonic() < deadline, "the shard saved no progress within 60 s"
        time.sleep(POLL_S)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    rerun = _finished(_start_shard(source, set_url, 1, second, tmp_path), tmp_path, 1)
    assert int(str(rerun["objects_resumed"])) >= len(progress.objects), rerun
    assert load_progress(bset, shard) is None, "a finished shard removes its progress file"
    assert [o.key for o in bset.store.list(SHARDS_PREFIX)] == [shard.manifest_key]
