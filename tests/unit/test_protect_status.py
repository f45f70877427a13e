"""What ``drctl protect`` leaves in a set (its objective, when it was last in sync), how a restore passes it on,
and what the report says of it; and a service started before its endpoints are reachable waits for them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from orchestrator.protect.status import STATUS_KEY, ProtectStatus, read_status, write_status
from orchestrator.providers.local import LocalStore
from orchestrator.report.model import StepReport
from orchestrator.report.protection import protection_note
from tests.support.cli import drctl
from tests.support.protect import ProtectProcess

RESTORE = """\
apiVersion: drctl/v1
kind: Runbook
metadata: {name: restore-kept}
spec:
  objectives: {rpo: 1m}
  steps:
    - id: restore
      action: backup.restore
      with: {set: "%s", target: "%s"}
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DRCTL_STATE_DIR": str(tmp_path / "state")}


def test_the_status_reads_back_and_junk_is_no_status(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert read_status(store) is None
    status = ProtectStatus("s3://b/p/", 60.0, "2026-12-04T10:00:00+00:00", "2026-12-04T10:00:01+00:00")
    write_status(store, status)
    assert read_status(store) == status
    (tmp_path / STATUS_KEY).write_text(json.dumps({"kind": "something else"}))
    assert read_status(store) is None


def _restore(step_id: str, synced: str, rpo: float = 60.0) -> StepReport:
    outputs = {"recovery_point": "p", "protected_in_sync_at": synced, "protected_rpo_s": rpo}
    return StepReport(
        step_id=step_id,
        action="backup.restore",
        tier=1,
        status="succeeded",
        attempts=(),
        started="2026-12-04T10:04:00+00:00",
        finished="2026-12-04T10:05:00+00:00",
        duration_seconds=60.0,
        outputs=outputs,
        error=None,
        approval=None,
    )


def test_the_report_says_whether_the_set_was_within_its_rpo_at_the_disaster() -> None:
    disaster = "2026-12-04T10:01:00+00:00"
    within = protection_note(disaster, (_restore("r", "2026-12-04T10:00:30+00:00"),))
    assert within is not None
    assert "30s before the disaster instant: within its RPO of 60s" in within
    past = protection_note(disaster, (_restore("r", "2026-12-04T09:50:00+00:00"),))
    assert past is not None
    assert "past its RPO of 60s" in past
    assert protection_note(disaster, ()) is None


def test_a_restore_of_a_protected_set_carries_the_status_into_the_report(tmp_path: Path) -> None:
    env = _env(tmp_path)
    source, vault, target = tmp_path / "source", tmp_path / "vault", tmp_path / "target"
    source.mkdir()
    (source / "a.txt").write_text("a")
    service = ProtectProcess([str(source), str(vault), "--rpo", "1m"], env)
    try:
        service.wait_for("the first point", lambda: service.sealed() >= 1)
        assert service.terminate() == 0
    finally:
        service.close()
    status = read_status(LocalStore(vault))
    assert status is not None
    assert status.rpo_s == 60
    runbook = tmp_path / "restore.yaml"
    runbook.write_text(RESTORE % (vault, target))
    ran = drctl("run", str(runbook), "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    report = json.loads(drctl("report", run_id, "--format", "json", env=env).stdout)
    (note,) = [n for n in report["notes"] if "drctl protect" in n]
    assert f"last in sync with its source at {status.synced_at}" in note
    assert "within its RPO of 60s" in note


def test_a_service_started_before_its_endpoint_is_reachable_waits_for_it(tmp_path: Path) -> None:
    env = {
        **_env(tmp_path),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "not-a-real-secret-0123456789",
        "AWS_REGION": "us-east-1",
    }
    service = ProtectProcess(["s3://nowhere/data/", str(tmp_path / "vault"), "--rpo", "1m"], env)
    try:
        service.wait_for("a retry at start", lambda: any("cannot start yet" in line for line in service.lines))
        assert service.terminate(timeout=30) == 0  # a stop during the back-off ends it cleanly
    except subprocess.TimeoutExpired:
        raise AssertionError(f"SIGTERM did not stop the waiting service:\n{service.stderr()}") from None
    finally:
        service.close()
