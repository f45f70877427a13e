"""kill -9 at random moments of ``backup copy``, ``backup restore``, ``drctl run`` and ``drctl drill`` (its cleanup
too); after each kill the documented recovery (the same command again, ``drctl resume RUN_ID``, ``drctl drill
--cleanup RUN_ID``) must end with nothing lost, duplicated or corrupt, as judged from outside drctl: rclone for
data, boto3 for EC2, Route53 and S3.

The moments are drawn from a seeded generator (``DRCTL_CHAOS_SEED`` repeats a run's draws; a failure names the
seed) and aimed at the process's observed progress: objects journalled or at their final names, a random moment
of a random step (timed on an unkilled reference run), a copy appearing in EC2, resources undone by a cleanup,
so kills land in every phase, from start-up to sealing and cleanup. A draw whose process ended before the kill
landed is drawn again: only real kills count. ``drctl protect`` does not exist yet, so it has no case.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.providers.factory import StoreFactory
from orchestrator.stack_outputs import load_stack_outputs
from tests.chaos.figures import scaled
from tests.chaos.kill9_backup import BackupLab, copy_case, make_restore_set, restore_case
from tests.chaos.kill9_drill import DrillLab, drill_case, reference_drill
from tests.chaos.kill9_process import UNKILLED, Outcome
from tests.chaos.kill9_run import Aims, RunLab, reference_run, run_case
from tests.chaos.kill9_tally import Tally, master_seed
from tests.support.app_drill import ShopEstate
from tests.support.cli import process_env
from tests.support.estate import delete_estate, lab_clients, run_seed

pytestmark = pytest.mark.lab

KILLS = {
    "copy": scaled(14, 1),
    "restore": scaled(12, 1),
    "run+resume": scaled(12, 1),
    "drill": scaled(14, 1),
}
"""Kills per command family: 52 under ``make chaos``, 4 under ``make test`` (its one drill kill aims into the
cleanup, the part of a drill only a crash can interrupt)."""
DRAWS_PER_KILL = 3
"""A draw can miss (the process ended first); more misses than this per wanted kill means the triggers are wrong."""


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    found = Tally(master_seed())
    yield found
    found.record()  # after every test of the module, passed or failed: the figures line is the class's total


@pytest.fixture(scope="module")
def estate(lab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopEstate]:
    """A seeded estate of the module's own (a stack named after its prefix): its drill record, standbys and
    zones are touched by nothing else on the lab, so the checks can demand they are exactly as before."""
    prefix = f"k9-{uuid.uuid4().hex[:8]}"
    lab = lab_clients(lab_env)
    where = tmp_path_factory.mktemp("kill9-estate")
    env = process_env(lab_env)
    try:
        outputs = where / "stack-outputs.json"
        seeded = run_seed(outputs, prefix, env)
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        yield ShopEstate(prefix, outputs, load_stack_outputs(outputs), lab, env)
    finally:
        delete_estate(lab, prefix)


@pytest.fixture
def chaos_zone(estate: ShopEstate) -> Iterator[tuple[str, str]]:
    """A hosted zone of the test's own for the run cases' records; removed with whatever is left in it."""
    r53 = estate.lab.route53
    name = f"{estate.prefix}.chaos.test"
    zone = r53.create_hosted_zone(Name=name, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"].rsplit("/", 1)[-1]
    try:
        yield zone, name
    finally:
        for record in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]:
            if record["Type"] not in ("NS", "SOA"):
                r53.change_resource_record_sets(
                    HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}
                )
        r53.delete_hosted_zone(Id=zone)


def kill_cases(tally: Tally, family: str, wanted: int, one: Callable[[random.Random, int], Outcome | None]) -> None:
    """Draw cases until ``wanted`` kills have landed, tally each, then fail naming every breach and the seed."""
    rng = tally.rng(family)
    landed = 0
    for index in range(1, wanted * DRAWS_PER_KILL + 1):
        if landed == wanted:
            break
        outcome = one(rng, index)
        if outcome is None:
            continue
        if outcome.landed == UNKILLED:
            tally.unkilled(family, index, outcome.trigger, outcome.problems)  # a failure, but no kill to count
            continue
        landed += 1
        tally.case(family, index, outcome.trigger, outcome.landed, outcome.problems)
        for what, n in outcome.notes.items():
            tally.note(family, what, n)
    print(tally.summary(family))
    if failure := tally.failure(family):
        pytest.fail(failure, pytrace=False)
    assert landed == wanted, f"only {landed} of {wanted} kills landed before the process ended (seed {tally.seed})"


def backup_lab(lab_env: dict[str, str], factory: StoreFactory, bucket: str, container: str, root: Path) -> BackupLab:
    return BackupLab(lab_env, factory.s3_client(), factory.blob_service(), bucket, container, root)


def test_kill_9_backup_copy_then_the_same_command_again(
    lab_env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, az_container: str, tmp_path: Path, tally: Tally
) -> None:
    lab = backup_lab(lab_env, lab_factory, s3_bucket, az_container, tmp_path)
    kill_cases(tally, "copy", KILLS["copy"], lambda rng, i: copy_case(lab, rng, i))


def test_kill_9_backup_restore_then_the_same_command_again(
    lab_env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, az_container: str, tmp_path: Path, tally: Tally
) -> None:
    lab = backup_lab(lab_env, lab_factory, s3_bucket, az_container, tmp_path)
    rset = make_restore_set(lab, tally.rng("restore set"))
    kill_cases(tally, "restore", KILLS["restore"], lambda rng, i: restore_case(lab, rset, rng, i))


def test_kill_9_run_then_resume(
    estate: ShopEstate, chaos_zone: tuple[str, str], s3_bucket: str, tmp_path: Path, tally: Tally
) -> None:
    tag = uuid.uuid4().hex[:6]
    lab = RunLab(estate, chaos_zone[0], chaos_zone[1], tmp_path)
    # Unkilled first: the checks must pass on a run nobody killed, and its steps and their times are what the
    # killed runs' triggers aim at.
    reference, problems = reference_run(lab, f"k9-run-{tag}-ref")
    assert not problems, f"the unkilled reference run fails the checks: {problems}"
    lock_url = f"s3://{s3_bucket}/run-locks/"
    aims = Aims.of(reference)

    def one(rng: random.Random, index: int) -> Outcome | None:
        return run_case(lab, rng, f"k9-run-{tag}-{index}", aims, lock_url)

    kill_cases(tally, "run+resume", KILLS["run+resume"], one)


@pytest.fixture
def source_image(estate: ShopEstate) -> Iterator[str]:
    """An image in the primary region only (a copy of the estate's db image under a name of its own), so the
    drill's image.ensure has to copy it into the recovery region."""
    ec2, o = estate.lab.ec2_primary, estate.outputs
    name = f"{estate.prefix}-k9-source"
    image = ec2.copy_image(SourceImageId=o.image_ids["db"], SourceRegion=o.recovery_region, Name=name)["ImageId"]
    try:
        yield image
    finally:
        ec2.deregister_image(ImageId=image)


def test_kill_9_drill_mid_run_and_in_its_cleanup_then_cleanup(
    estate: ShopEstate, s3_bucket: str, source_image: str, tmp_path: Path, tally: Tally
) -> None:
    lab = DrillLab(estate, s3_bucket, source_image, tmp_path)
    lab.snapshot()
    reference, problems = reference_drill(lab, "ref")
    assert not problems, f"the unkilled reference drill fails the checks: {problems}"
    aims = Aims.of(reference)
    resources = sum(1 for line in reference.stderr_lines if line.startswith("drctl: cleanup: "))
    assert resources >= 3, f"the reference drill's cleanup undid too little to kill it halfway: {reference.stderr}"
    aimed = {True: 0, False: 0}

    def one(rng: random.Random, index: int) -> Outcome | None:
        # Half the kills aim into the cleanup (the first of them too): alternately, counting only kills that landed.
        into_cleanup = aimed[True] <= aimed[False]
        outcome = drill_case(lab, rng, f"case-{index}", aims, resources, into_cleanup)
        aimed[into_cleanup] += outcome is not None and outcome.landed != UNKILLED
        return outcome

    kill_cases(tally, "drill", KILLS["drill"], one)
    assert tally.landed["drill"]["during cleanup"] >= aimed[True] // 2 + 1, tally.summary("drill")
