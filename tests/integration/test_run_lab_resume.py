"""Issue-level check on the lab: a runbook copies backups S3 -> Azure and verifies them; killed with SIGKILL
in the middle of the copy, ``drctl resume`` completes it and no step that had succeeded runs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.engine.lock import LockHolder
from orchestrator.engine.s3_lease import S3Lease
from orchestrator.errors import ExitCode
from orchestrator.providers.factory import StoreFactory

MiB = 1024 * 1024


def drctl(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_sigkill_mid_copy_then_resume_completes_without_rerunning_succeeded_steps(
    lab_env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, az_container: str, tmp_path: Path
) -> None:
    client = lab_factory.s3_client()
    for i in range(3):
        client.put_object(Bucket=s3_bucket, Key=f"config/{i}.yaml", Body=f"setting: {i}\n".encode())
    for i in range(40):
        client.put_object(Bucket=s3_bucket, Key=f"db/{i:03d}.dump", Body=os.urandom(MiB))
    runbook = tmp_path / "copy-and-verify.yaml"
    runbook.write_text(
        f"""apiVersion: drctl/v1
kind: Runbook
metadata: {{name: copy-and-verify}}
spec:
  steps:
    - id: copy-config
      action: backup.copy
      with: {{from: "s3://{s3_bucket}/config/", to: "az://{az_container}/config-set/", mode: full}}
    - id: copy-db
      action: backup.copy
      needs: [copy-config]
      # Slowed down so the kill lands in the middle of it.
      with: {{from: "s3://{s3_bucket}/db/", to: "az://{az_container}/db-set/", mode: full, bwlimit: 8M}}
    - id: verify-db
      action: backup.verify
      needs: [copy-db]
      with: {{set: "az://{az_container}/db-set/", deep: true}}
"""
    )
    env = {**os.environ, **lab_env, "DRCTL_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", str(runbook), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    db_blobs = lab_factory.open(f"az://{az_container}/db-set/data/")
    deadline = time.monotonic() + 120
    while len(list(db_blobs.list())) < 8:  # poll for the condition itself: the db copy is under way
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the db copy never got going"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()

    status = drctl(env, "status", "--json")
    [run] = json.loads(status.stdout)
    assert run["status"] == "running"  # killed: nothing recorded an end
    assert not list(lab_factory.open(f"az://{az_container}/db-set/points/").list())  # no point claimed

    resumed = drctl(env, "resume", run["run_id"], "--json")
    assert resumed.returncode == ExitCode.OK, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"

    final = json.loads(drctl(env, "status", run["run_id"], "--json").stdout)
    steps = final["steps"]
    assert steps["copy-config"]["status"] == "succeeded"
    assert steps["copy-config"]["attempts"] == 1, "a step that had succeeded ran again"
    assert steps["copy-db"]["status"] == "succeeded"
    assert steps["verify-db"]["status"] == "succeeded"
    # The resumed copy sent only what the killed one had not verified.
    assert 0 < steps["copy-db"]["outputs"]["objects_transferred"] <= 40
    assert steps["copy-db"]["outputs"]["bytes_transferred"] < 40 * MiB


def test_a_shared_s3_run_lock_refuses_a_second_run_naming_the_holder(
    lab_env: dict[str, str], s3_bucket: str, tmp_path: Path
) -> None:
    runbook = tmp_path / "hello.yaml"
    runbook.write_text(
        "apiVersion: drctl/v1\nkind: Runbook\nmetadata: {name: shared}\nspec:\n"
        "  steps:\n    - {id: hello, action: notify, with: {message: hi}}\n"
    )
    lock_url = f"s3://{s3_bucket}/team-state/"
    env = {**os.environ, **lab_env, "DRCTL_STATE_DIR": str(tmp_path / "state")}
    client = StoreFactory(lab_env).s3_client()
    key = "team-state/locks/runbook-shared-on-stack-none.json"
    holder = S3Lease(client, s3_bucket, key)
    other = LockHolder.here("run-on-another-machine", "shared")
    holder.acquire(other)

    refused = drctl(env, "run", str(runbook), "--lock-url", lock_url)
    assert refused.returncode == ExitCode.LOCK_HELD, refused.stderr
    assert "run-on-another-machine" in refused.stderr
    assert refused.stderr.count("\n") == 1

    forced = drctl(env, "run", str(runbook), "--lock-url", lock_url, "--force-unlock")
    assert forced.returncode == ExitCode.OK, forced.stderr
    holder.release(other)  # its lease was broken: releasing must not touch the lock any more
    # Released at the end of the run: the next one takes it.
    assert drctl(env, "run", str(runbook), "--lock-url", lock_url).returncode == ExitCode.OK

    # A run that crashed holding the lock: `drctl unlock` names the run, and removes only that run's lock.
    crashed = S3Lease(client, s3_bucket, key)
    crashed_holder = LockHolder.here("crashed-run", "shared")
    crashed.acquire(crashed_holder)
    assert drctl(env, "unlock", "some-other-run", "--lock-url", lock_url).returncode == ExitCode.NOT_FOUND
    unlocked = drctl(env, "unlock", "crashed-run", "--lock-url", lock_url)
    assert unlocked.returncode == ExitCode.OK, unlocked.stderr
    assert "held by run crashed-run of shared" in unlocked.stdout
    assert drctl(env, "run", str(runbook), "--lock-url", lock_url).returncode == ExitCode.OK
    crashed.release(crashed_holder)  # stops its heartbeat; the lock is no longer its own, so nothing is written
