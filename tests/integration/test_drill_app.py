"""``drctl drill runbooks/drill.yaml`` proves the application, not only machines: on an estate seeded for this
module, the shop's database is restored from the vault and counted, the RPO comes from the data, and every drill
copy and every process the lab's instance runner started for it is gone afterwards. And it fails, still cleaning
up, when the data is corrupt, when the app dies while it is health-checked, and when nothing runs the instances.

The estate is a stack of its own (the seeder names a test prefix's stack after it), so a drill of it copies
only its standbys, whatever other estates share the lab.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from localstack.seed.workload import DUMP_KEY
from orchestrator.actions.compute_start import LOOKED_UP_AHEAD
from orchestrator.engine.journal import RunJournal
from orchestrator.errors import ExitCode
from orchestrator.stack_outputs import load_stack_outputs
from tests.support.app_drill import (
    ShopEstate,
    copies_of_tier,
    drill_copies,
    lab_dir,
    live_copies,
    newest_point_blob,
    outcome_of,
    pid_alive,
    port_open,
    processes_mentioning,
    read_blob,
    report,
    run_drill,
    runner_instances,
    steps_by_id,
    tags_of,
    wait_until_no_process,
    write_blob,
)
from tests.support.cli import drctl, process_env
from tests.support.estate import REPO, TIERS, delete_estate, lab_clients, run_seed
from tests.support.ports import free_ports

pytestmark = pytest.mark.lab

KILL_RACE_WAIT_S = 60.0
PRIVATE_LAB_TIMEOUT_S = 420.0


@pytest.fixture(scope="module")
def estate(lab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopEstate]:
    prefix = f"tda-{uuid.uuid4().hex[:8]}"
    lab = lab_clients(lab_env)
    where = tmp_path_factory.mktemp("app-drill")
    env = process_env(lab_env)
    try:
        seeded = run_seed(where / "stack-outputs.json", prefix, env)
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        outputs = load_stack_outputs(where / "stack-outputs.json")
        assert outputs.stack == prefix
        yield ShopEstate(prefix, where / "stack-outputs.json", outputs, lab, env)
    finally:
        delete_estate(lab, prefix)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_a_passing_drill_restores_and_counts_the_orders_measures_rpo_from_the_data_and_leaves_no_process(
    estate: ShopEstate, state: Path
) -> None:
    code, outcome = run_drill(estate, state, *estate.params())
    assert code == ExitCode.OK, outcome
    run_id = outcome["run_id"]
    doc = report(estate, state, run_id)
    steps = steps_by_id(doc)
    assert doc["status"] == "succeeded"

    # The data came back: check-db counted the restored orders, and the newest one dates the RPO.
    check = steps["check-db"]
    assert check["status"] == "succeeded"
    values = json.loads(check["outputs"]["values"])
    assert int(values["orders"]) > 0, values
    assert int(values["first_order"]) == 1
    assert (check["outputs"]["passed"], check["outputs"]["failed"]) == (3, 0)
    assert steps["restore-db"]["status"] == "succeeded"
    assert steps["restore-db"]["outputs"]["object"] == DUMP_KEY
    assert doc["rpo_method"] == "data"
    rpo = doc["rpo"]["measured_seconds"]
    assert rpo > 0, doc["rpo"]  # the writer keeps committing and the dumps are periodic: some orders are lost
    newest = datetime.fromisoformat(check["outputs"]["data_timestamp"])
    disaster = datetime.fromisoformat(doc["disaster_at"])
    assert abs((disaster - newest).total_seconds() - rpo) < 0.01  # the RPO is the data's, not a point's age

    phases = {p["phase"]: p["seconds"] for p in doc["rto_phases"]["phases"]}
    for phase in ("restore", "boot", "health"):
        assert phases.get(phase, 0) > 0, f"phase {phase} has no time: {doc['rto_phases']}"

    # The app tier's standbys were looked up while the database tier came up (only checks and restores ran in
    # between); the web tier's were not, because chaos-app (a shell step, which may change anything) ran first.
    ahead = {e["step_id"] for e in doc["events"] if e["message"].startswith(LOOKED_UP_AHEAD)}
    assert ahead == {"start-app"}, ahead

    # One copy per standby of this estate, each gone, and nothing the runner started for them still running.
    copies = drill_copies(estate, run_id)
    standby = {i for ids in estate.outputs.standby_instance_ids.values() for i in ids}
    journal = RunJournal(state / "runs.sqlite")
    try:
        ledger = {r.resource_id: r.detail for r in journal.resources(run_id) if r.kind == "instance"}
    finally:
        journal.close()
    assert set(ledger) == set(copies)
    assert {detail["source"] for detail in ledger.values()} == standby
    assert sorted(tags_of(inst)["drctl:tier"] for inst in copies.values()) == sorted(TIERS)
    assert live_copies(estate, run_id) == set()
    assert {c["resource_id"] for c in doc["cleanup"] if c["kind"] == "instance" and c["outcome"] == "removed"} == set(
        copies
    )
    wait_until_no_process(set(copies))


def test_a_corrupt_dump_in_the_vault_fails_the_drill_before_any_restore_and_it_still_cleans_up(
    estate: ShopEstate, state: Path
) -> None:
    # A point of the test's own, so the newest point is known whatever ran before; the drill's own copy is made
    # to fail (its source does not exist; copy-to-vault continues on error), so this point stays the newest.
    made = drctl(
        "backup",
        "copy",
        f"s3://{estate.prefix}-app-data/",
        f"az://{estate.vault}/sets/app/",
        "--compress",
        "--quiet",
        "--json",
        env=estate.env(state),
    )
    assert made.returncode == 0, made.stderr
    point_id, blob = newest_point_blob(estate, DUMP_KEY)
    assert json.loads(made.stdout)["recovery_point"] == point_id
    original = read_blob(estate, blob)
    corrupt = bytes(b ^ 0xFF for b in original)  # every byte differs, the length does not
    assert len(corrupt) == len(original)
    assert corrupt != original
    write_blob(estate, blob, corrupt)
    try:
        code, outcome = run_drill(estate, state, *estate.params(source=f"s3://{estate.prefix}-no-such-bucket/"))
    finally:
        write_blob(estate, blob, original)
    assert code == ExitCode.FAILED, outcome
    run_id = outcome["run_id"]
    doc = report(estate, state, run_id)
    steps = steps_by_id(doc)
    assert doc["status"] == "failed"
    assert steps["copy-to-vault"]["status"] == "failed"  # on purpose, and the run went on
    failed = {s for s, step in steps.items() if step["status"] in ("failed", "timed_out")} - {"copy-to-vault"}
    # The corrupt blob is what failed: the deep verify re-reads it, and restore-files and restore-db read it.
    assert failed & {"verify-vault", "deep-verify", "restore-db"}, failed
    assert failed <= {"verify-vault", "deep-verify", "restore-files", "restore-db"}, failed
    assert any(point_id in str(steps[s]["error"]) or "corrupt" in str(steps[s]["error"]) for s in failed), {
        s: steps[s]["error"] for s in failed
    }
    assert steps["restore-db"]["status"] != "succeeded"
    assert steps["check-db"]["started"] is None
    assert steps["check-db"]["status"] == "skipped"

    copies = drill_copies(estate, run_id)
    assert live_copies(estate, run_id) == set()
    assert all(c["outcome"] in ("removed", "restored") for c in doc["cleanup"]), doc["cleanup"]
    assert {c["resource_id"] for c in doc["cleanup"] if c["kind"] == "instance"} == set(copies)
    restores = estate.lab.blobs.get_container_client(estate.vault).list_blobs(name_starts_with=f"restores/{run_id}/")
    assert [b.name for b in restores] == []
    wait_until_no_process(set(copies))
    assert read_blob(estate, blob) == original


def test_killing_the_app_while_it_is_health_checked_fails_the_drill_and_it_still_cleans_up(
    estate: ShopEstate, state: Path
) -> None:
    earlier = set(copies_of_tier(estate, "app", live_only=True))
    argv = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "drill",
        str(REPO / "runbooks" / "drill.yaml"),
        "--stack-outputs",
        str(estate.outputs_path),
        "--json",
        *estate.params(),
        "-p",
        "health_interval=5s",
        "-p",
        "health_timeout=20s",
    ]
    proc = subprocess.Popen(argv, env=estate.env(state), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        app_copy = _wait_for_new_app_copy(estate, earlier, proc)
        pid = _wait_for_runner_pid(app_copy, proc)
        os.killpg(pid, signal.SIGKILL)
        killed_at = time.time()
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=KILL_RACE_WAIT_S)
    outcome = outcome_of(proc.returncode, out, err)
    assert proc.returncode == ExitCode.FAILED, err[-3000:]
    run_id = outcome["run_id"]
    doc = report(estate, state, run_id)
    steps = steps_by_id(doc)
    app = steps["app-healthy"]
    assert tags_of(copies_of_tier(estate, "app")[app_copy])["drctl:drill-run"] == run_id
    # The race: the runner lists the pid the moment it boots the program, which then takes a while to import and
    # listen; the kill lands within ~50 ms of the listing, so no probe can have been answered. The first probe
    # runs at once (before the boot), the next 5 s later; a loaded machine may boot the app after that probe too.
    after = killed_at - datetime.fromisoformat(app["started"]).timestamp()
    print(f"app copy killed {after:.2f}s after app-healthy started (probes every 5s)")
    assert app["status"] in ("failed", "timed_out"), f"app-healthy passed: killed {after:.2f}s after it began: {app}"
    assert not pid_alive(pid)
    assert steps["check-db"]["status"] == "succeeded"  # the data was fine: the app is what failed
    assert steps["start-web"]["started"] is None
    assert steps["shop-serves"]["started"] is None

    copies = drill_copies(estate, run_id)
    assert app_copy in copies
    assert live_copies(estate, run_id) == set()
    assert {c["resource_id"] for c in doc["cleanup"] if c["kind"] == "instance" and c["outcome"] == "removed"} == set(
        copies
    )
    wait_until_no_process(set(copies))


def _wait_for_new_app_copy(estate: ShopEstate, earlier: set[str], proc: subprocess.Popen[str]) -> str:
    """The id of the app copy the drill launches, found by its tags as soon as it exists."""
    deadline = time.monotonic() + KILL_RACE_WAIT_S
    while time.monotonic() < deadline:
        fresh = set(copies_of_tier(estate, "app", live_only=True)) - earlier
        if fresh:
            assert len(fresh) == 1, fresh
            return fresh.pop()
        if proc.poll() is not None:
            pytest.fail(f"the drill ended before launching its app copy: {proc.communicate()[1][-3000:]}")
        time.sleep(0.1)
    pytest.fail("the drill launched no app copy in time")


def _wait_for_runner_pid(instance_id: str, proc: subprocess.Popen[str]) -> int:
    """The pid of the instance's program, as soon as the runner's state lists it (polled every 50 ms)."""
    deadline = time.monotonic() + KILL_RACE_WAIT_S
    while time.monotonic() < deadline:
        booted = runner_instances().get(instance_id)
        if booted is not None:
            return int(booted["pid"])
        if proc.poll() is not None:
            pytest.fail(f"the drill ended before its app copy booted: {proc.communicate()[1][-3000:]}")
        time.sleep(0.05)
    pytest.fail(f"the runner did not boot {instance_id} in time")


def test_without_the_instance_runner_a_drill_fails_at_its_first_health_check(
    lab_env: dict[str, str], tmp_path: Path
) -> None:
    shared = lab_dir()
    private = tmp_path / "lab"
    private.mkdir()
    for venv in ("localstack-venv", "postgres-venv"):
        assert (shared / venv).is_dir(), f"the lab has no {venv} in {shared}; run `make setup`"
        (private / venv).symlink_to(shared / venv)  # the installed emulator, not a fresh install (~50 s)
    aws_port, azure_port = free_ports(2)
    env = {
        **process_env({}),
        "DRCTL_LAB_DIR": str(private),
        "DRCTL_LAB_AWS_PORT": str(aws_port),
        "DRCTL_LAB_AZURE_PORT": str(azure_port),
        "DRCTL_LAB_RUNNER": "off",
    }
    python = str(REPO / ".venv" / "bin" / "python")
    argv = [python, "localstack/lab.py", "run", "--", python, "-m", "localstack.lab_drill", "-p", "health_timeout=8s"]
    began = time.monotonic()
    result = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=PRIVATE_LAB_TIMEOUT_S, check=False
    )
    took = time.monotonic() - began
    text = result.stdout + result.stderr
    print(f"private lab drill took {took:.1f}s")
    assert "Traceback" not in text, text[-4000:]
    assert result.returncode != 0, text[-4000:]
    assert "the instance runner is off" in result.stderr, text[-4000:]
    db_failed = [line for line in text.splitlines() if line.startswith("[db-healthy] failed")]
    assert any("not healthy within 8s" in line for line in db_failed), text[-4000:]
    for never in ("restore-db", "check-db", "start-app"):
        assert f"[{never}] running" not in text, text[-4000:]

    # The journal says the same, step by step.
    journal = {**env, "DRCTL_STATE_DIR": str(private / "state")}
    runs = drctl("status", "--json", env=journal)
    assert runs.returncode == 0, runs.stderr
    drills = [r for r in json.loads(runs.stdout) if r.get("mode") == "drill"]
    assert len(drills) == 1, drills
    shown = drctl("report", drills[0]["run_id"], "--format", "json", env=journal)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    steps = steps_by_id(doc)
    assert steps["db-healthy"]["status"] in ("failed", "timed_out")
    assert steps["start-db"]["status"] == "succeeded"
    for never in ("restore-db", "check-db", "start-app", "app-healthy"):
        assert steps[never]["started"] is None, steps[never]
    assert [c for c in doc["cleanup"] if c["kind"] == "instance"], "the drill launched no db copy to clean up"
    assert all(c["outcome"] in ("removed", "restored") for c in doc["cleanup"]), doc["cleanup"]

    # lab.py run stopped the private lab it started: nothing listens, nothing of it runs.
    assert not port_open(aws_port)
    assert not port_open(azure_port)
    assert list(processes_mentioning(str(private))) == []
    assert not list((private / "run").glob("*.pid"))
