"""kill -9 of ``drctl run``, recovered with ``drctl resume RUN_ID``, judged by EC2 and Route53 as boto3 reads them;
and what the drill cases share with it: the run journal read for where a kill landed, and the moments to aim at.

Each case launches its own tagged instances (two, then one) and points a record of a zone of the test's own at
the second tier. A third of the cases hold the run lock as an S3 lease (``--lock-url``), which a killed run
leaves held until ``drctl unlock RUN_ID``; a third kill their first resume too. After the recovery EC2 holds
exactly those three instances, running, none launched twice, the record holds the app instance's address, and
(with a lease) the next run of the runbook takes the lock at once and launches nothing.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.chaos.kill9_checks import instances, query, record_values, tags_of
from tests.chaos.kill9_process import Killed, Outcome, Spawned, Trigger, not_killed
from tests.support.app_drill import ShopEstate
from tests.support.cli import drctl

CASE_TAG = "drctl-chaos:case"
STEP_TAG = "drctl-chaos:step"
EXPECTED = {"db": 2, "app": 1}
"""Instances each run case must end with, by step tag: exactly these, never more."""


def runs_of(state: Path) -> list[tuple[Any, ...]]:
    return query(state / "runs.sqlite", "SELECT run_id, status FROM runs ORDER BY started")


def events_of(state: Path, run_id: str) -> list[tuple[str, str]]:
    rows = query(state / "runs.sqlite", "SELECT kind, message FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
    return [(str(k), str(m)) for k, m in rows]


def running_steps(state: Path, run_id: str) -> list[str]:
    rows = query(state / "runs.sqlite", "SELECT step_id FROM steps WHERE run_id = ? AND status = 'running'", (run_id,))
    return sorted(str(r[0]) for r in rows)


@dataclass(frozen=True)
class Aims:
    """Where a run can be killed, from an unkilled reference run of the same runbook: during start-up (before
    its first event line), or at a random moment of a random step (the step's ``running`` line seen, then a
    random part of the time the step took), so every step, API calls in flight included, gets kills."""

    startup_s: float
    steps: dict[str, float]

    @classmethod
    def of(cls, reference: Killed) -> Aims:
        steps = reference.step_times()
        assert steps, f"the reference run printed no steps: {reference.stderr[-1000:]}"
        return cls(reference.stamps[0], steps)

    def draw(self, rng: random.Random, spawned: Spawned) -> tuple[Trigger, Callable[[], int]]:
        aim = rng.choice(["", *sorted(self.steps)])
        if not aim:
            return Trigger("startup/loading the runbook", 0, rng.uniform(0.0, self.startup_s)), spawned.line_count
        trigger = Trigger(f"in step {aim}", 1, rng.uniform(0.0, self.steps[aim]))
        return trigger, lambda: spawned.lines_starting(f"[{aim}] running")


# -- run + resume -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLab:
    estate: ShopEstate
    zone_id: str
    zone_name: str
    root: Path

    def runbook(self, case: str) -> Path:
        """A runbook of the case's own (name, tags and record), so cases neither share a lock nor see each
        other's instances."""
        o = self.estate.outputs
        image, subnet, region = o.image_ids["db"], o.recovery_subnet_ids[0], o.recovery_region
        launch = (
            "      action: compute.launch\n"
            '      with: {{image: "{image}", subnet: "{subnet}", region: "{region}", count: {count}, timeout: 2m,\n'
            '             tags: {{"{case_tag}": "{case}", "{step_tag}": {step}}}}}\n'
        )
        common = {"image": image, "subnet": subnet, "region": region, "case": case}
        common |= {"case_tag": CASE_TAG, "step_tag": STEP_TAG}
        text = (
            f"apiVersion: drctl/v1\nkind: Runbook\nmetadata: {{name: {case}}}\nspec:\n  steps:\n"
            "    - id: launch-db\n"
            + launch.format(count=EXPECTED["db"], step="db", **common)
            + "    - id: launch-app\n      tier: 2\n"
            + launch.format(count=EXPECTED["app"], step="app", **common)
            + "    - id: switch-dns\n      tier: 3\n      needs: [launch-app]\n      action: dns.failover\n"
            f'      with: {{zone: "{self.zone_id}", name: "{self.record(case)}", type: A, ttl: 60,\n'
            '             endpoint: "${steps.launch-app.outputs.private_ip}", timeout: 1m, interval: 1s}\n'
        )
        path = self.root / case / "runbook.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def record(self, case: str) -> str:
        return f"{case}.{self.zone_name}"

    def prepare(self, case: str) -> None:
        """The record exists before the run, pointing elsewhere: the failover must move it."""
        self.estate.lab.route53.change_resource_record_sets(
            HostedZoneId=self.zone_id,
            ChangeBatch={"Changes": [_upsert(self.record(case), "192.0.2.10")]},
        )

    def check(self, case: str, run_id: str, env: dict[str, str]) -> list[str]:
        ec2 = self.estate.lab.ec2
        live = instances(ec2, {f"tag:{CASE_TAG}": [case]})
        ever = instances(ec2, {f"tag:{CASE_TAG}": [case]}, live_only=False)
        problems: list[str] = []
        by_step: dict[str, list[str]] = {}
        for i, inst in live.items():
            by_step.setdefault(tags_of(inst)[STEP_TAG], []).append(i)
        counts = {step: len(ids) for step, ids in by_step.items()}
        if counts != EXPECTED or len(ever) != len(live):
            problems.append(f"EC2 holds {counts} live ({len(ever)} ever launched), expected exactly {EXPECTED}")
        if states := {i: inst["State"]["Name"] for i, inst in live.items() if inst["State"]["Name"] != "running"}:
            problems.append(f"instances not running: {states}")
        app_ips = sorted(live[i].get("PrivateIpAddress", "") for i in by_step.get("app", []))
        values = record_values(self.estate.lab.route53, self.zone_id, self.record(case))
        if values != app_ips:
            problems.append(f"record {self.record(case)} holds {values}, expected the app instance's {app_ips}")
        status = drctl("status", run_id, "--json", env=env)
        doc = json.loads(status.stdout) if status.returncode == 0 else {}
        steps = {k: v["status"] for k, v in doc.get("steps", {}).items()}
        if doc.get("status") != "succeeded" or set(steps.values()) != {"succeeded"}:
            problems.append(f"drctl status says {doc.get('status')} {steps} (exit {status.returncode})")
        claimed = doc.get("steps", {}).get("launch-db", {}).get("outputs", {}).get("instance_ids", "")
        db_ids = sorted(by_step.get("db", []))
        if sorted(filter(None, str(claimed).split(","))) != db_ids:
            problems.append(f"the journal's launch-db instances {claimed!r} are not EC2's {db_ids}")
        return problems

    def tidy(self, case: str) -> None:
        """Remove the case's instances and record: the lab stays small for the cases after it."""
        ids = sorted(instances(self.estate.lab.ec2, {f"tag:{CASE_TAG}": [case]}))
        if ids:
            self.estate.lab.ec2.terminate_instances(InstanceIds=ids)
        values = record_values(self.estate.lab.route53, self.zone_id, self.record(case))
        if values is not None:
            change: Any = {"Action": "DELETE", "ResourceRecordSet": _record(self.record(case), values)}
            self.estate.lab.route53.change_resource_record_sets(
                HostedZoneId=self.zone_id, ChangeBatch={"Changes": [change]}
            )


def _record(name: str, values: list[str]) -> Any:
    return {"Name": name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": v} for v in values]}


def _upsert(name: str, value: str) -> Any:
    return {"Action": "UPSERT", "ResourceRecordSet": _record(name, [value])}


def run_landed(state: Path) -> str:
    runs = runs_of(state)
    if not runs:
        return "before the run started"
    run_id, status = runs[-1]
    if status != "running":
        return f"after the run ended ({status})"
    steps = running_steps(state, str(run_id))
    return f"in {'+'.join(steps)}" if steps else "between steps"


def reference_run(lab: RunLab, case: str) -> tuple[Killed, list[str]]:
    """The same runbook, not killed: the checks must pass without a kill, and its event lines are what the
    killed cases' triggers count."""
    env = lab.estate.env(lab.root / case / "state")
    lab.prepare(case)
    done = Spawned(["run", str(lab.runbook(case)), "--json"], env, lab.root / case / "run").wait()
    runs = runs_of(lab.root / case / "state")
    problems = [f"exit {done.returncode}: {done.stderr[-1000:]}"] if done.returncode != 0 or not runs else []
    problems += lab.check(case, str(runs[-1][0]), env) if runs else []
    lab.tidy(case)
    return done, problems


def run_case(lab: RunLab, rng: random.Random, case: str, aims: Aims, lock_url: str) -> Outcome | None:
    """One killed run and its recovery. A third of the cases hold the run lock as an S3 lease (``--lock-url``),
    which a killed run leaves held; a third kill their first resume too."""
    state = lab.root / case / "state"
    env = lab.estate.env(state)
    runbook = str(lab.runbook(case))
    lab.prepare(case)
    lock = ["--lock-url", lock_url] if rng.random() < 0.35 else []
    spawned = Spawned(["run", runbook, "--json", *lock], env, lab.root / case / "run")
    trigger, progress = aims.draw(rng, spawned)
    killed = spawned.kill_at(trigger, progress)
    if not killed.killed:
        lab.tidy(case)
        return not_killed(killed, trigger)
    landed = run_landed(state)
    notes = {"runs holding an S3 lease": 1} if lock else {}
    kill_resume = Trigger("the resume", rng.randint(0, 5), rng.uniform(0.0, 0.2)) if rng.random() < 0.3 else None
    problems, resumed = recover_run(lab, case, runbook, env, lock, kill_resume, notes)
    runs = runs_of(state)
    problems += lab.check(case, str(runs[-1][0]), env) if runs else ["no run in the journal after the recovery"]
    if lock and not problems:
        problems += next_run(lab, case, runbook, env, lock, resumed)
    lab.tidy(case)
    return Outcome(trigger.describe(), landed, problems, notes)


def next_run(lab: RunLab, case: str, runbook: str, env: dict[str, str], lock: list[str], resumed: bool) -> list[str]:
    """The lease must not outlive the recovery: after a resume (which took it over and released it) the next run
    of the runbook takes it at once, and finds every instance and the record already there. When nothing was
    resumed (the run had ended when it was killed), the dead run's lease is what ``drctl unlock`` is for."""
    again = drctl("run", runbook, "--json", *lock, env=env, timeout=300)
    holder = re.search(r"drctl unlock (\S+)", again.stderr)
    if again.returncode == 3 and holder and not resumed:
        unlocked = drctl("unlock", holder.group(1), *lock, env=env)
        if unlocked.returncode != 0:
            return [f"drctl unlock {holder.group(1)} exited {unlocked.returncode}: {unlocked.stderr[-500:]}"]
        again = drctl("run", runbook, "--json", *lock, env=env, timeout=300)
    if again.returncode != 0:
        return [f"a new run after the recovery exited {again.returncode}: {again.stderr[-500:]}"]
    return lab.check(case, str(runs_of(lab.root / case / "state")[-1][0]), env)


def recover_run(
    lab: RunLab,
    case: str,
    runbook: str,
    env: dict[str, str],
    lock: list[str],
    kill_resume: Trigger | None,
    notes: dict[str, int],
) -> tuple[list[str], bool]:
    """The documented recovery: ``drctl resume RUN_ID`` (the same ``drctl run`` when nothing was journalled;
    nothing when the run had ended), after ``drctl unlock RUN_ID`` when a dead run's lease refuses it (exit 3).
    With ``kill_resume`` the first resume that gets going is killed as well, at that trigger (its event lines).
    Returns the problems, and whether anything was resumed or run again."""
    state = lab.root / case / "state"
    for attempt in range(6):
        runs = runs_of(state)
        if runs and runs[-1][1] == "succeeded":
            return [], attempt > 0
        command = ["resume", str(runs[-1][0])] if runs else ["run", runbook]
        command += ["--json", *lock]
        if kill_resume is not None and runs:
            spawned = Spawned(command, env, lab.root / case / f"resume-killed-{attempt}")
            done = spawned.kill_at(kill_resume, spawned.line_count)
            code, err = done.returncode, done.stderr
            if done.killed:
                notes["resumes killed too"] = 1
                kill_resume = None
                continue
            if code != 3:
                kill_resume = None  # it ran to its end before the trigger: nothing left to kill
        else:
            result = drctl(*command, env=env, timeout=300)
            code, err = result.returncode, result.stderr
        holder = re.search(r"drctl unlock (\S+)", err)
        if code == 3 and lock and holder:
            unlocked = drctl("unlock", holder.group(1), *lock, env=env)
            if unlocked.returncode != 0:
                problem = f"drctl unlock {holder.group(1)} exited {unlocked.returncode}: {unlocked.stderr[-500:]}"
                return [problem], True
            notes["leases unlocked"] = notes.get("leases unlocked", 0) + 1
            continue
        if code != 0 or "Traceback" in err:
            return [f"{command[0]} exited {code}: {err[-800:]}"], True
        return [], True
    return ["the recovery did not end in 6 attempts"], True
