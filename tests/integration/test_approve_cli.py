"""``drctl approve`` from another process: a run started with ``--wait-for-approval`` waits at its gate, is
approved from a second terminal, and the journal and the report say who approved, from where, and why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.errors import ExitCode
from tests.support.cli import assert_one_line_error, drctl

RUNBOOK = """apiVersion: drctl/v1
kind: Runbook
metadata: {name: gated}
spec:
  steps:
    - id: prepare
      action: shell
      with: {command: "true"}
    - id: switch-dns
      action: shell
      needs: [prepare]
      approval: required
      with: {command: "echo switched"}
"""


def cli_env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "DRCTL_"))}
    return {**env, "DRCTL_STATE_DIR": str(state)}


def wait_for_gate(env: dict[str, str], proc: subprocess.Popen[str]) -> str:
    """The run id, once the run's gate is waiting (read from ``drctl status``, as a person would)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before waiting: {proc.communicate()}"
        listed = drctl("status", "--json", env=env)
        runs = json.loads(listed.stdout) if listed.returncode == 0 else []
        if runs:
            run_id = str(runs[0]["run_id"])
            steps = json.loads(drctl("status", run_id, "--json", env=env).stdout)["steps"]
            if steps.get("switch-dns", {}).get("status") == "running":
                return run_id
        time.sleep(0.2)  # polling the journal; the condition above is the readiness check
    raise AssertionError("the gate never started waiting")


def test_a_waiting_run_is_approved_from_another_process_and_the_report_says_by_whom(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "state")
    runbook = tmp_path / "gated.yaml"
    runbook.write_text(RUNBOOK)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", str(runbook), "--wait-for-approval", "2m"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = wait_for_gate(env, proc)
        approved = drctl("approve", run_id, "switch-dns", "--by", "ci-bot", "--comment", "CAB-42", env=env)
        assert approved.returncode == 0, approved.stderr
        assert "approved by ci-bot (from " in approved.stdout
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"drctl approve {run_id} switch-dns" in err, "the waiting gate must tell the person what to run"
    report = json.loads(drctl("report", run_id, "--format", "json", env=env).stdout)
    assert "approved by ci-bot" in json.dumps(report)
    assert "CAB-42" in json.dumps(report)

    again = drctl("approve", run_id, "switch-dns", env=env)
    assert_one_line_error(again, ExitCode.INVALID_INPUT, "already succeeded")


def test_approve_refuses_unknown_runs_and_steps_without_a_gate(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "state")
    runbook = tmp_path / "gated.yaml"
    runbook.write_text(RUNBOOK)
    failed = drctl("run", str(runbook), env=env)  # no TTY and no flag: the gate fails the run
    assert failed.returncode == ExitCode.FAILED
    assert "--wait-for-approval" in failed.stderr
    run_id = json.loads(drctl("status", "--json", env=env).stdout)[0]["run_id"]

    assert_one_line_error(drctl("approve", "no-such-run", "switch-dns", env=env), ExitCode.NOT_FOUND, "no run")
    assert_one_line_error(
        drctl("approve", run_id, "prepare", env=env), ExitCode.INVALID_INPUT, "has no approval gate (gated: switch-dns)"
    )
    later = drctl("approve", run_id, "switch-dns", env=env)
    assert later.returncode == 0, later.stderr
    assert f"drctl resume {run_id} continues it" in later.stdout
    resumed = drctl("resume", run_id, env=env)
    assert resumed.returncode == 0, resumed.stderr
