"""A backup step honours its ``timeout`` on the lab: the copy stops at the deadline instead of running on,
the step fails as timed out, no recovery point is claimed, and a later run resumes the journaled objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from orchestrator.errors import ExitCode
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import backup_env
from tests.support.cli import drctl

MiB = 1024 * 1024
OBJECTS = 8


def runbook(path: Path, source: Path, bucket: str, extra: str) -> Path:
    path.write_text(
        f"""apiVersion: drctl/v1
kind: Runbook
metadata: {{name: copy-with-a-deadline}}
spec:
  steps:
    - id: copy
      action: backup.copy
      {extra}
      # One object at a time at 1 MiB/s: the whole copy needs about {OBJECTS} s.
      with: {{from: "{source.as_uri()}/", to: "s3://{bucket}/set/", mode: full, transfers: 1, bwlimit: 1M}}
"""
    )
    return path


def test_a_backup_copy_step_stops_at_its_timeout_and_claims_no_point(
    lab_env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for i in range(OBJECTS):
        (source / f"{i}.bin").write_bytes(os.urandom(MiB))
    env = backup_env(lab_env, tmp_path / "state")

    timed = runbook(tmp_path / "timed.yaml", source, s3_bucket, "timeout: 2s")
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", str(timed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert "Traceback" not in result.stderr
    assert "timed out after 2s" in result.stdout + result.stderr

    client = lab_factory.s3_client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="set/").get("Contents", [])]
    blobs = [k for k in keys if k.startswith("set/data/")]
    # Without cooperative cancellation the copy would run on to all 8 objects before the step was judged.
    assert len(blobs) < OBJECTS, f"the copy ran on after its deadline: {len(blobs)} objects written"
    assert not [k for k in keys if k.startswith("set/points/")], "a timed-out copy must not claim a point"

    untimed = runbook(tmp_path / "untimed.yaml", source, s3_bucket, "")
    finished = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", str(untimed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == ExitCode.OK, finished.stderr
    listed = drctl("backup", "list", f"s3://{s3_bucket}/set/", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    points = json.loads(listed.stdout)
    assert [p["objects"] for p in points] == [OBJECTS]
