"""kill -9 of ``drctl drill``, mid-run or in its own cleanup, recovered with ``drctl drill --cleanup RUN_ID``,
judged by EC2, Route53 and S3 as boto3 reads them.

Each case drills copies of two of the estate's standby tiers, copies an image into the recovery region,
restores a point into a prefix of its own and moves the estate's drill record. After the kill (and, for a third
of the cases, a kill of the first ``--cleanup`` too) and ``--cleanup``: no drill instance or image copy of the
run is left (instances found by tag, image copies by the name the drill gives them, since a copy need not carry
a tag), the drill and production records are as before, the restore prefix is empty and the standbys never
started.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.drill.scope import TAG_RUN
from tests.chaos.kill9_checks import instances, query, record_sets, record_values
from tests.chaos.kill9_process import Killed, Outcome, Spawned, Trigger, not_killed
from tests.chaos.kill9_run import Aims, events_of, running_steps, runs_of
from tests.support.app_drill import ShopEstate
from tests.support.cli import drctl

DRILL_RUNBOOK = Path(__file__).parent / "runbooks" / "kill9-drill.yaml"


@dataclass
class DrillLab:
    estate: ShopEstate
    bucket: str
    source_image: str
    """An image only the primary region holds, so the drill's ``image.ensure`` copies it (named after the run)."""
    root: Path
    record_before: list[str] | None = None
    production_before: list[tuple[str, str, str, tuple[str, ...]]] = field(default_factory=list)

    def snapshot(self) -> None:
        o, r53 = self.estate.outputs, self.estate.lab.route53
        self.record_before = record_values(r53, o.drill_dns_zone_id, o.drill_record_name)
        self.production_before = record_sets(r53, o.dns_zone_id, o.production_record_name)

    def args(self, case: str) -> list[str]:
        params = ["-p", f"restores=s3://{self.bucket}/{case}/", "-p", f"source_image={self.source_image}"]
        return ["drill", str(DRILL_RUNBOOK), "--stack-outputs", str(self.estate.outputs_path), *params, "--json"]

    def leftovers(self, run_id: str | None = None) -> set[str]:
        """What drills of this estate made and left, of one run or of any: live drill copies of its standbys
        (found by tag) and copies of the source image in the recovery region (found by the name the drill
        gives them, ``<name>-drill-<run id>``: a copy need not carry a tag)."""
        return self.drill_instances(run_id) | self.image_copies(run_id)

    def drill_instances(self, run_id: str | None = None, regions: int = 2) -> set[str]:
        o, lab = self.estate.outputs, self.estate.lab
        wanted = {"tag:drctl:stack": [o.stack], **({f"tag:{TAG_RUN}": [run_id]} if run_id else {"tag-key": [TAG_RUN]})}
        return {f"instance {i}" for ec2 in (lab.ec2, lab.ec2_primary)[:regions] for i in instances(ec2, wanted)}

    def image_copies(self, run_id: str | None = None) -> set[str]:
        named: Any = [{"Name": "name", "Values": [f"{self.estate.outputs.stack}-k9-image-drill-{run_id or '*'}"]}]
        images = self.estate.lab.ec2.describe_images(Owners=["self"], Filters=named)["Images"]
        return {f"image {i['ImageId']} ({i['Name']})" for i in images if i.get("State") != "deregistered"}

    def check(self, case: str, run_id: str | None, before: set[str]) -> list[str]:
        o, lab = self.estate.outputs, self.estate.lab
        problems: list[str] = []
        left = self.leftovers(run_id) if run_id else set()
        if left:
            problems.append(f"drill {run_id} left {sorted(left)}")
        if stray := self.leftovers() - before - left:
            problems.append(f"drill leftovers of this estate that no run id accounts for: {sorted(stray)}")
        record = record_values(lab.route53, o.drill_dns_zone_id, o.drill_record_name)
        if record != self.record_before:
            problems.append(f"the drill record holds {record}, before the drill {self.record_before}")
        if (production := record_sets(lab.route53, o.dns_zone_id, o.production_record_name)) != self.production_before:
            problems.append(f"production's records changed: {production}")
        restored = lab.s3_primary.list_objects_v2(Bucket=self.bucket, Prefix=f"{case}/").get("KeyCount", 0)
        if restored:
            problems.append(f"{restored} restored objects left under s3://{self.bucket}/{case}/")
        standby = [i for ids in o.standby_instance_ids.values() for i in ids]
        if states := {i: s for i, s in _states(lab.ec2, standby).items() if s != "stopped"}:
            problems.append(f"standby instances touched: {states}")
        return problems


def _states(ec2: Any, ids: list[str]) -> dict[str, str]:
    answer = ec2.describe_instances(InstanceIds=ids)
    return {i["InstanceId"]: i["State"]["Name"] for r in answer["Reservations"] for i in r["Instances"]}


def drill_landed(state: Path) -> str:
    runs = runs_of(state)
    if not runs:
        return "before the run started"
    kinds = [(k, m) for k, m in events_of(state, str(runs[-1][0]))]
    if any(m.startswith("cleanup ended") for _, m in kinds):
        return "after cleanup"
    if any(m.startswith("cleanup started") for _, m in kinds):
        return "during cleanup"
    if any(k == "finished" for k, _ in kinds):
        return "between the run's end and its cleanup"
    if any(k == "compensate" for k, _ in kinds):
        return "during compensation"
    steps = running_steps(state, str(runs[-1][0]))
    return f"mid-run ({'+'.join(steps) or 'between steps'})"


def reference_drill(lab: DrillLab, case: str) -> tuple[Killed, list[str]]:
    state = lab.root / case / "state"
    before = lab.leftovers()
    done = Spawned(lab.args(case), lab.estate.env(state), lab.root / case / "drill").wait()
    runs = runs_of(state)
    problems = [f"exit {done.returncode}: {done.stderr[-1000:]}"] if done.returncode != 0 or not runs else []
    problems += lab.check(case, str(runs[-1][0]) if runs else None, before)
    return done, problems


def cleanup_progress(state: Path) -> int:
    """1 once the drill's cleanup has started, plus one per resource it has undone: the cleanup's own
    progress, from the journal (its lines on stderr come only after each resource is done)."""
    db = state / "runs.sqlite"
    started = query(db, "SELECT count(*) FROM events WHERE kind = 'cleanup' AND message LIKE 'cleanup started%'")
    if not started or not started[0][0]:
        return 0
    undone = query(db, "SELECT count(*) FROM drill_resources WHERE outcome IS NOT NULL")
    return 1 + int(undone[0][0] if undone else 0)


def drill_case(
    lab: DrillLab, rng: random.Random, case: str, aims: Aims, resources: int, into_cleanup: bool
) -> Outcome | None:
    """``aims``: the reference drill's start-up and steps; ``resources``: how many its cleanup undid. A case
    aims at the run (start-up, a random moment of a random step, or the moment EC2 first shows a copy it
    made) or into its cleanup (once it started, after a random number of resources undone, some to go)."""
    state = lab.root / case / "state"
    env = lab.estate.env(state)
    before = lab.leftovers()
    spawned = Spawned(lab.args(case), env, lab.root / case / "drill")
    if into_cleanup:
        # The instances are undone together, last: stopping after them would land past the cleanup.
        undone = rng.randint(0, resources - 2)
        trigger = Trigger(f"cleanup, {undone} resource(s) undone", 1 + undone, rng.uniform(0.0, 0.05))
        killed = spawned.kill_at(trigger, lambda: cleanup_progress(state))
    elif rng.random() < 1 / 3:
        # The moment the cloud holds something the drill made, before drctl has heard back: what only a kill
        # between a create call and its ledger entry can leave.
        # One describe call per look (the recovery region's, where the drill makes both), to see it early.
        images = rng.random() < 0.5
        trigger = Trigger(f"a drill {'image' if images else 'instance'} appeared in EC2", 1, rng.uniform(0.0, 0.03))

        def appeared() -> int:
            return len((lab.image_copies() if images else lab.drill_instances(regions=1)) - before)

        killed = spawned.kill_at(trigger, appeared)
    else:
        trigger, progress = aims.draw(rng, spawned)
        killed = spawned.kill_at(trigger, progress)
    if not killed.killed:
        return not_killed(killed, trigger)
    landed = drill_landed(state)
    runs = runs_of(state)
    run_id = str(runs[-1][0]) if runs else None
    problems: list[str] = []
    notes: dict[str, int] = {}
    if run_id is not None:
        command = ["drill", "--cleanup", run_id, "--stack-outputs", str(lab.estate.outputs_path)]
        if rng.random() < 0.3:
            # The cleanup is killed too, a random while in (start-up, the tag sweep, the undoing).
            again = Spawned(command, env, lab.root / case / "cleanup-killed")
            if again.kill_at(Trigger("the --cleanup", 0, rng.uniform(0.5, 3.5)), again.line_count).killed:
                notes["--cleanups killed too"] = 1
        cleaned = drctl(*command, env=env)
        if cleaned.returncode != 0 or "Traceback" in cleaned.stderr:
            problems.append(f"drctl drill --cleanup {run_id} exited {cleaned.returncode}: {cleaned.stderr[-800:]}")
    problems += lab.check(case, run_id, before)
    return Outcome(trigger.describe(), landed, problems, notes)
