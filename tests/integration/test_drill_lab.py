"""``drctl drill`` on the lab, as a person runs it: the seeded demo estate, the runbooks of ``runbooks/``, and
the emulators' own view afterwards. What must hold whatever happens to a drill: production untouched, every
drill copy gone, the drill DNS record back as it was, the drill's restore emptied, and the report saying so."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.drill.scope import TAG_BATCH, TAG_RUN
from orchestrator.engine.journal import RunJournal
from orchestrator.errors import ExitCode
from orchestrator.runbook.loader import load_runbook
from orchestrator.stack_outputs import StackOutputs, load_stack_outputs
from tests.support.cli import assert_one_line_error, drctl, process_env
from tests.support.estate import REPO, Lab, lab_clients, run_seed

pytestmark = pytest.mark.lab

PREFIX = "drctl-lab"  # the runbooks' defaults name this estate's buckets and vault, as `make drill` uses them
DRILL = str(REPO / "runbooks" / "drill.yaml")
FAILOVER = str(REPO / "runbooks" / "failover-aws-to-azure.yaml")
FAILBACK = str(REPO / "runbooks" / "failback.yaml")
HOLD = str(Path(__file__).parent / "runbooks" / "drill-hold.yaml")
LIVE = ["pending", "running", "stopping", "stopped"]
KILL_WAIT_S = 60.0


@dataclass(frozen=True)
class DrillLab:
    outputs_path: Path
    outputs: StackOutputs
    lab: Lab
    base_env: dict[str, str]

    def env(self, state: Path) -> dict[str, str]:
        return {**self.base_env, "DRCTL_STATE_DIR": str(state)}


@pytest.fixture(scope="module")
def drill_lab(lab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> DrillLab:
    out = tmp_path_factory.mktemp("drill") / "stack-outputs.json"
    env = process_env(lab_env)
    seeded = run_seed(out, PREFIX, env)
    assert seeded.returncode == 0, seeded.stderr
    return DrillLab(out, load_stack_outputs(out), lab_clients(lab_env), env)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def run_drill(lab: DrillLab, state: Path, runbook: str, *args: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    result = drctl("drill", runbook, "--stack-outputs", str(lab.outputs_path), "--json", *args, env=lab.env(state))
    assert "Traceback" not in result.stderr, result.stderr
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON outcome (exit {result.returncode}): {result.stdout!r} {result.stderr[-2000:]!r}")
    return result, doc


def instances(lab: DrillLab, *filters: tuple[str, list[str]]) -> dict[str, dict[str, Any]]:
    wanted: Any = [{"Name": k, "Values": v} for k, v in filters]
    found: dict[str, dict[str, Any]] = {}
    for page in lab.lab.ec2.get_paginator("describe_instances").paginate(Filters=wanted):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                found[inst["InstanceId"]] = dict(inst)
    return found


def live_copies(lab: DrillLab, run_id: str) -> set[str]:
    return set(instances(lab, ("instance-state-name", LIVE), (f"tag:{TAG_RUN}", [run_id])))


def all_copies(lab: DrillLab, run_id: str) -> dict[str, dict[str, Any]]:
    return instances(lab, (f"tag:{TAG_RUN}", [run_id]))


def drill_record(lab: DrillLab) -> list[str]:
    o = lab.outputs
    answer = lab.lab.route53.list_resource_record_sets(
        HostedZoneId=o.drill_dns_zone_id, StartRecordName=o.drill_record_name, StartRecordType="A", MaxItems="1"
    )
    sets = [s for s in answer["ResourceRecordSets"] if s["Name"].rstrip(".") == o.drill_record_name.rstrip(".")]
    return sorted(r["Value"] for s in sets for r in s.get("ResourceRecords", []))


def production_records(lab: DrillLab) -> list[tuple[str, str]]:
    o = lab.outputs
    answer = lab.lab.route53.list_resource_record_sets(HostedZoneId=o.dns_zone_id)
    return sorted(
        (str(s.get("SetIdentifier")), str(s.get("Failover")))
        for s in answer["ResourceRecordSets"]
        if s["Name"].rstrip(".") == o.production_record_name.rstrip(".")
    )


def standby_states(lab: DrillLab) -> dict[str, str]:
    ids = [i for tier in lab.outputs.standby_instance_ids.values() for i in tier]
    return {i: inst["State"]["Name"] for i, inst in instances(lab, ("instance-id", ids)).items()}


def blobs_under(lab: DrillLab, container: str, prefix: str) -> list[str]:
    return [b.name for b in lab.lab.blobs.get_container_client(container).list_blobs(name_starts_with=prefix)]


def outcomes(doc: Any) -> dict[tuple[str, str], str]:
    return {(c["kind"], c["resource_id"]): c["outcome"] for c in doc["cleanup"]}


def test_drill_passes_measures_and_leaves_nothing_behind_twice(drill_lab: DrillLab, state: Path) -> None:
    record_before = drill_record(drill_lab)
    production_before = production_records(drill_lab)
    for _ in range(2):  # a second drill on the same estate works too: nothing of the first is in its way
        result, doc = run_drill(drill_lab, state, DRILL)
        assert result.returncode == 0, result.stderr[-3000:]
        run_id = doc["run_id"]
        assert doc["status"] == "succeeded"
        assert doc["rto"]["verdict"] == "pass"
        assert doc["rpo"]["verdict"] == "pass"

        copies = all_copies(drill_lab, run_id)
        standby = {i for ids in drill_lab.outputs.standby_instance_ids.values() for i in ids}
        assert len(copies) == len(standby)  # one per standby instance of db, app and web
        tags = {inst["InstanceId"]: {t["Key"]: t["Value"] for t in inst["Tags"]} for inst in copies.values()}
        assert all(TAG_BATCH in t and t[TAG_RUN] == run_id for t in tags.values()), tags
        assert {inst["SubnetId"] for inst in copies.values()} <= set(drill_lab.outputs.drill_subnet_ids)
        assert live_copies(drill_lab, run_id) == set()

        removed = outcomes(doc)
        assert {k for k, v in removed.items() if k[0] == "instance" and v == "removed"} == {
            ("instance", i) for i in copies
        }
        assert removed[("objects", f"az://{PREFIX}-vault/restores/{run_id}/")] == "removed"
        assert [o for (kind, _), o in removed.items() if kind == "dns-record"] == ["restored"]
        assert blobs_under(drill_lab, f"{PREFIX}-vault", f"restores/{run_id}/") == []
        assert drill_record(drill_lab) == record_before
        assert production_records(drill_lab) == production_before
        assert set(standby_states(drill_lab).values()) == {"stopped"}  # production's standby never started

        report = json.loads(drctl("report", run_id, "--format", "json", env=drill_lab.env(state)).stdout)
        assert report["mode"] == "drill"
        assert {(c["kind"], c["outcome"]) for c in report["cleanup"]} == {
            ("instance", "removed"),
            ("objects", "removed"),
            ("dns-record", "restored"),
        }
        assert next(s for s in report["steps"] if s["step_id"] == "switch-dns")["approval"] == "auto-approved (drill)"
        html = drctl("report", run_id, "--format", "html", env=drill_lab.env(state)).stdout
        assert_no_secret(drill_lab, state, html + result.stdout + result.stderr)


def test_make_drill_seeds_drills_reports_and_leaves_no_drill_instance_in_the_lab(
    drill_lab: DrillLab, tmp_path: Path
) -> None:
    env = {**drill_lab.base_env, "DRCTL_LAB_DIR": str(tmp_path)}
    # Only what this drill could have left counts: a leftover of another test must not fail this one.
    tagged_before = set(instances(drill_lab, ("instance-state-name", LIVE), ("tag-key", [TAG_RUN])))
    result = subprocess.run(
        [sys.executable, "-m", "localstack.lab_drill"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "RTO  PASS" in result.stdout
    assert "RPO  PASS" in result.stdout
    assert "## Cleanup" in result.stdout  # the Markdown report, with what was removed
    assert "no drill leftovers" in result.stdout
    assert len(list((tmp_path / "reports").glob("drill-*.html"))) == 1
    tagged = set(instances(drill_lab, ("instance-state-name", LIVE), ("tag-key", [TAG_RUN]))) - tagged_before
    assert tagged == set(), f"drill instances left in the lab: {sorted(tagged)}"


def test_recovery_order_holds_and_a_tier_launches_in_batches(drill_lab: DrillLab, state: Path) -> None:
    extra = add_standby(drill_lab, "app", 5)
    try:
        result, doc = run_drill(drill_lab, state, DRILL)
        assert result.returncode == 0, result.stderr[-3000:]
        run_id = doc["run_id"]
        journal = RunJournal(state / "runs.sqlite")
        try:
            steps = journal.steps(run_id)
            resources = journal.resources(run_id)
        finally:
            journal.close()
        tiers = step_tiers(drill_lab, DRILL)
        for tier in sorted(set(tiers.values()))[1:]:
            earlier_end = max(at(steps[s].finished) for s, t in tiers.items() if t < tier and steps[s].finished)
            first_start = min(at(steps[s].started) for s, t in tiers.items() if t == tier and steps[s].started)
            assert first_start >= earlier_end, f"tier {tier} started before the tiers below it had ended"
        app_sources = set(extra) | set(drill_lab.outputs.standby_instance_ids["app"])
        app_copies = [r for r in resources if r.kind == "instance" and r.detail.get("source") in app_sources]
        assert {r.detail["source"] for r in app_copies} == app_sources, "one copy per standby"
        # Alike copies share a request: one per batch (the tier's standbys spread over the drill subnets, and
        # the added ones carry a tag of their own), so fewer requests than copies, each asked for once.
        requests = {(r.detail["batch"], r.detail["launch_asked"]) for r in app_copies}
        batches = {r.detail["batch"] for r in app_copies}
        assert len(requests) == len(batches) < len(app_copies), f"not launched in batches: {sorted(requests)}"
        assert live_copies(drill_lab, run_id) == set()
    finally:
        drill_lab.lab.ec2.terminate_instances(InstanceIds=extra)


def test_a_drill_that_fails_halfway_still_cleans_up_and_says_what_failed(drill_lab: DrillLab, state: Path) -> None:
    result, doc = run_drill(drill_lab, state, DRILL, "-p", "inject_failure=true")
    assert result.returncode == ExitCode.FAILED
    run_id = doc["run_id"]
    assert doc["status"] == "failed"
    assert doc["rto"]["verdict"] == "fail"  # the run never reached its last tier: not recovered
    copies = all_copies(drill_lab, run_id)
    tiers = {next(t["Value"] for t in inst["Tags"] if t["Key"] == "drctl:tier") for inst in copies.values()}
    assert tiers == {"db", "app"}  # web never started: the failure stopped the run in the app tier
    assert live_copies(drill_lab, run_id) == set()
    assert {k for k, v in outcomes(doc).items() if v == "removed" and k[0] == "instance"} == {
        ("instance", i) for i in copies
    }
    text = drctl("report", run_id, "--format", "markdown", env=drill_lab.env(state)).stdout
    assert "| chaos-app | shell | failed |" in text
    assert "## Cleanup" in text
    assert "| instance |" in text


def test_ctrl_c_mid_drill_exits_130_after_cleaning_up(drill_lab: DrillLab, state: Path) -> None:
    with held_drill(drill_lab, state) as (proc, run_id):
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=KILL_WAIT_S)
    assert proc.returncode == ExitCode.INTERRUPTED, err[-2000:]
    assert "Traceback" not in err
    assert live_copies(drill_lab, run_id) == set()
    assert "removed      instance" in out


def test_after_kill_9_cleanup_by_run_id_and_the_orphan_sweep_remove_the_leftovers(
    drill_lab: DrillLab, state: Path
) -> None:
    env = drill_lab.env(state)
    outputs = str(drill_lab.outputs_path)
    with held_drill(drill_lab, state) as (first, first_id):
        first.kill()
        first.wait(timeout=KILL_WAIT_S)
    with held_drill(drill_lab, state) as (second, second_id):
        second.kill()
        second.wait(timeout=KILL_WAIT_S)
    assert live_copies(drill_lab, first_id)
    assert live_copies(drill_lab, second_id)

    listed = drctl("drill", "--cleanup", "--orphans", "--dry-run", "--stack-outputs", outputs, env=env)
    assert listed.returncode == 0, listed.stderr
    assert f"orphan     drill {first_id}" in listed.stdout
    assert "stopped without finishing" in listed.stdout
    assert live_copies(drill_lab, first_id)  # a dry run removes nothing

    by_id = drctl("drill", "--cleanup", first_id, "--stack-outputs", outputs, env=env)
    assert by_id.returncode == 0, by_id.stderr
    assert live_copies(drill_lab, first_id) == set()
    assert live_copies(drill_lab, second_id)

    swept = drctl("drill", "--cleanup", "--orphans", "--stack-outputs", outputs, env=env)
    assert swept.returncode == 0, swept.stderr
    assert live_copies(drill_lab, second_id) == set()
    again = drctl("drill", "--cleanup", first_id, "--stack-outputs", outputs, env=env)
    assert again.returncode == 0
    assert "nothing to remove" in again.stdout


def test_failback_drills_after_a_kept_failover_drill(drill_lab: DrillLab, state: Path) -> None:
    env = drill_lab.env(state)
    kept, doc = run_drill(drill_lab, state, FAILOVER, "--keep")
    assert kept.returncode == 0, kept.stderr[-3000:]
    failover_id = doc["run_id"]
    try:
        assert len(live_copies(drill_lab, failover_id)) == 3  # kept for a look around
        restored = f"az://{PREFIX}-vault/restores/{failover_id}/"
        assert blobs_under(drill_lab, f"{PREFIX}-vault", f"restores/{failover_id}/")
        back, back_doc = run_drill(drill_lab, state, FAILBACK, "-p", f"recovered={restored}")
        assert back.returncode == 0, back.stderr[-3000:]
        assert back_doc["status"] == "succeeded"
        homes = [k for k, v in outcomes(back_doc).items() if k[0] == "objects" and v == "removed"]
        assert homes == [("objects", f"s3://{PREFIX}-app-data/failback/{back_doc['run_id']}/")]
    finally:
        cleaned = drctl("drill", "--cleanup", failover_id, "--stack-outputs", str(drill_lab.outputs_path), env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    assert live_copies(drill_lab, failover_id) == set()


def test_a_drill_is_not_resumed(drill_lab: DrillLab, state: Path) -> None:
    result, doc = run_drill(drill_lab, state, DRILL, "-p", "inject_failure=true")
    assert result.returncode == ExitCode.FAILED
    resumed = drctl("resume", doc["run_id"], env=drill_lab.env(state))
    assert_one_line_error(resumed, ExitCode.INVALID_INPUT, "drills are not resumed", "drctl drill --cleanup")


# -- helpers ------------------------------------------------------------------------------------------------------


def assert_no_secret(lab: DrillLab, state: Path, output: str) -> None:
    """The lab's Azure account key (the one real-looking secret here) is in no output and no byte of the journal."""
    conn = lab.base_env["AZURE_STORAGE_CONNECTION_STRING"]
    key = next(part.split("=", 1)[1] for part in conn.split(";") if part.startswith("AccountKey="))
    assert key not in output
    for path in state.iterdir():
        assert key.encode() not in path.read_bytes(), f"the account key is in {path.name}"


def add_standby(lab: DrillLab, tier: str, count: int) -> list[str]:
    """More stopped standby instances in ``tier``, like the seeder's (from the tier's launch template, so their
    drill copies run the tier's program too), so one tier has several to copy."""
    seeded = instances(lab, ("instance-id", lab.outputs.standby_instance_ids[tier]))
    model = next(iter(seeded.values()))
    template = next(t["Value"] for t in model["Tags"] if t["Key"] == "aws:ec2launchtemplate:id")
    tags: Any = [{"Key": t["Key"], "Value": t["Value"]} for t in model["Tags"] if not t["Key"].startswith("aws:")]
    tags.append({"Key": "drctl:test", "Value": uuid.uuid4().hex[:8]})
    answer = lab.lab.ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": template},
        ImageId=model["ImageId"],
        InstanceType=model["InstanceType"],
        SubnetId=model["SubnetId"],
        MinCount=count,
        MaxCount=count,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    ids = [i["InstanceId"] for i in answer["Instances"]]
    lab.lab.ec2.stop_instances(InstanceIds=ids)
    return ids


def step_tiers(lab: DrillLab, runbook: str) -> dict[str, int]:
    """The tier of each step a drill of ``runbook`` runs."""
    steps = load_runbook(Path(runbook), {}, lab.outputs).graph.steps
    return {step_id: step.tier for step_id, step in steps.items() if step.runs_in("drill")}


def at(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


class held_drill:
    """A drill of ``drill-hold.yaml`` running in its own process, yielded once its first copy is in the
    ledger; whatever the test did to it, the process is gone when the block ends."""

    def __init__(self, lab: DrillLab, state: Path) -> None:
        self._lab = lab
        self._state = state
        self._proc: subprocess.Popen[str] | None = None
        self._earlier: set[str] = set()

    def __enter__(self) -> tuple[subprocess.Popen[str], str]:
        env = self._lab.env(self._state)
        self._earlier = _runs_with_instances(self._state / "runs.sqlite")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "drill", HOLD, "--stack-outputs", str(self._lab.outputs_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return self._proc, self._wait_for_copy()

    def _wait_for_copy(self) -> str:
        """Poll the journal (read-only) until the drill has recorded an instance: the readiness this test needs."""
        db = self._state / "runs.sqlite"
        deadline = time.monotonic() + KILL_WAIT_S
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pytest.fail(f"the drill ended early: {self._proc.communicate()}")
            started = _runs_with_instances(db) - self._earlier
            if started:
                return started.pop()
            time.sleep(0.05)
        pytest.fail("the drill recorded no instance in time")

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()
        self._proc.wait(timeout=KILL_WAIT_S)


def _runs_with_instances(db: Path) -> set[str]:
    """Runs that have recorded an instance in the journal at ``db`` (read-only; none while it does not exist)."""
    if not db.exists():
        return set()
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT DISTINCT run_id FROM drill_resources WHERE kind = 'instance'").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return set()
    return {str(r[0]) for r in rows}
