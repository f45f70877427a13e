"""``make failover`` on the lab: a real failover (production stopped, the standby tiers restored and serving)
and its failback (production home again with the recovery site's orders), checked from outside: by EC2's
view of the instances and by what the shop's web tier answers."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from localstack.lab_failover import tier_instances
from tests.support.cli import drctl, process_env
from tests.support.estate import REPO, lab_clients, run_seed

pytestmark = pytest.mark.lab

PREFIX = "drctl-lab"  # the estate `make failover` seeds and fails over
WEB_PORT = 8000


def shop(address: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{address}:{WEB_PORT}/api/summary", timeout=5) as answer:
        document: dict[str, Any] = json.loads(answer.read())
        return document


def test_failover_serves_from_the_standby_and_failback_brings_production_home(
    lab_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**process_env(lab_env), "DRCTL_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-m", "localstack.lab_failover"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])

    lab = lab_clients(lab_env)
    standby = tier_instances(lab.ec2, "standby", PREFIX)
    production = tier_instances(lab.ec2_primary, "production", PREFIX)
    standby_web, production_web = standby["web"]["PrivateIpAddress"], production["web"]["PrivateIpAddress"]
    # During the failover the standby web tier served, from the standby database, the restored orders.
    served = [line for line in done.stdout.splitlines() if line.startswith("the shop answers from the standby")]
    assert len(served) == 1, done.stdout[-3000:]
    assert f"({standby_web}:{WEB_PORT}, database {standby['db']['PrivateIpAddress']})" in served[0]

    # After the failback production serves again, and the standby tiers are stopped (their programs with them).
    assert {t: i["State"]["Name"] for t, i in standby.items()} == dict.fromkeys(("db", "app", "web"), "stopped")
    assert {t: i["State"]["Name"] for t, i in production.items()} == dict.fromkeys(("db", "app", "web"), "running")
    home = shop(production_web)
    assert home["db"] == production["db"]["PrivateIpAddress"]
    assert home["orders"]["count"] > 0
    with pytest.raises(urllib.error.URLError, match="refused"):
        shop(standby_web)

    # The failover's report measured the RPO from the restored data, against the moment production stopped.
    run_id = next(line.split()[3] for line in done.stdout.splitlines() if line.startswith("make failover: failover"))
    report = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "report", run_id, "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert doc["rpo_method"] == "data"
    assert doc["disaster_at_source"] == "--disaster-at"
    assert doc["status"] == "succeeded"


def test_azure_to_aws_recovers_from_the_vault_onto_instances_launched_from_templates(
    lab_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**process_env(lab_env), "DRCTL_STATE_DIR": str(tmp_path / "state")}
    outputs = tmp_path / "stack-outputs.json"
    seeded = run_seed(outputs, PREFIX, env)
    assert seeded.returncode == 0, seeded.stderr
    runbook = str(REPO / "runbooks" / "failover-azure-to-aws.yaml")
    drill = drctl("drill", runbook, "--stack-outputs", str(outputs), "--json", env=env, timeout=300)
    assert "Traceback" not in drill.stderr, drill.stderr[-3000:]
    assert drill.returncode == 0, drill.stderr[-3000:]
    doc = json.loads(drill.stdout)
    assert doc["status"] == "succeeded"
    report = drctl("report", doc["run_id"], "--format", "json", env=env)
    assert report.returncode == 0, report.stderr
    steps = {s["step_id"]: s for s in json.loads(report.stdout)["steps"]}
    # The instances came from the templates (no standby was started), and the database from the vault.
    launched = [steps[s]["outputs"] for s in ("launch-db", "launch-app", "launch-web")]
    assert [o["launched"] for o in launched] == [1, 1, 1]
    assert json.loads(steps["check-db"]["outputs"]["values"])["orders"] != "0"
    assert "copy-to-vault" not in steps  # nothing is read from the lost side
    assert json.loads(report.stdout)["rpo_method"] == "data"
    gone = {c["outcome"] for c in doc["cleanup"] if c["kind"] == "instance"}
    assert gone == {"removed"}
