"""A drill's EC2 calls do not grow with the tier, and a drill behind EC2's throttling still completes.

Two generated estates on LocalStack (``tests.bench.drill_estate``), one tier each, of 5 and of 50 stopped
standbys, are drilled through ``tests.support.ec2_throttle``: first as a call counter, then behind token
buckets small enough that the 50-standby tier's launches are throttled. The counts come from the proxy, which
sees every EC2 request drctl makes (the selection, the lookups, the launches, the waits and the cleanup).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.drill.scope import TAG_BATCH
from tests.bench.drill_estate import (
    Estate,
    EstateShape,
    ec2_client,
    ensure_estate,
    runbook_yaml,
    stack_outputs,
    teardown,
)
from tests.bench.drill_overhead import DrillProcess, run_drill
from tests.support.cli import process_env
from tests.support.ec2_throttle import Ec2ThrottleProxy, Limits

pytestmark = pytest.mark.lab

Drillable = tuple[Estate, Path, Path]
"""An estate, its stack outputs file and its runbook."""

SIZES = (5, 50)
MUTATING = ("RunInstances", "TerminateInstances", "StartInstances", "StopInstances", "CreateTags")
POLL_SLACK = 4
"""Describe calls a bigger tier may add: polls while copies boot or end are paced by time, not by size."""


@pytest.fixture(scope="module")
def estates(lab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Drillable]]:
    del lab_env  # the lab must be up; the estate's own client reads the same settings from the environment
    ec2 = ec2_client()
    where = tmp_path_factory.mktemp("fleet")
    names = {size: f"fleet-{size}-{uuid.uuid4().hex[:6]}" for size in SIZES}
    made: dict[int, Drillable] = {}
    try:
        for size, name in names.items():
            estate = ensure_estate(ec2, EstateShape(name, tiers=1, per_tier=size))
            outputs, runbook = where / f"{name}.json", where / f"{name}.yaml"
            outputs.write_text(json.dumps(stack_outputs(estate)), encoding="utf-8")
            runbook.write_text(runbook_yaml(estate, interval_s=1, status_checks=False), encoding="utf-8")
            made[size] = (estate, outputs, runbook)
        yield made
    finally:
        for name in names.values():
            teardown(ec2, name)


def drill_through(proxy: Ec2ThrottleProxy, estate: Drillable, lab_env: dict[str, str], state: Path) -> DrillProcess:
    _, outputs, runbook = estate
    env = {**process_env(lab_env), "AWS_ENDPOINT_URL_EC2": proxy.url}
    return run_drill(runbook, outputs, state, env)


def test_a_tier_of_50_makes_the_calls_a_tier_of_5_makes(
    estates: dict[int, Drillable], lab_env: dict[str, str], tmp_path: Path
) -> None:
    calls: dict[int, Counter[str]] = {}
    for size in SIZES:
        proxy = Ec2ThrottleProxy(lab_env["AWS_ENDPOINT_URL"])
        try:
            drill = drill_through(proxy, estates[size], lab_env, tmp_path / f"state-{size}")
        finally:
            proxy.close()
        assert drill.exit_code == 0, drill.outcome
        calls[size] = proxy.calls
        # Every copy was launched and ended: the launches and terminations were charged for each instance.
        assert proxy.instances["RunInstances"] == size
        assert proxy.instances["TerminateInstances"] == size
    small, big = calls[5], calls[50]
    subnets = len(estates[50][0].drill_subnets)
    assert big["RunInstances"] == small["RunInstances"] == subnets, (small, big)
    assert {a: big[a] for a in MUTATING} == {a: small[a] for a in MUTATING}, (small, big)
    assert big.total() <= small.total() + POLL_SLACK, (small, big)


def test_a_drill_behind_ec2s_throttling_completes(
    estates: dict[int, Drillable], lab_env: dict[str, str], tmp_path: Path
) -> None:
    """RunInstances' resource bucket holds 30 instances, refilled at 10 a second (AWS: 1,000 and 2): the two
    batches of 25 cannot both go at once, so the second is throttled until the bucket has refilled."""
    limits = Limits(resource={**Limits().resource, "RunInstances": (30, 10)})
    proxy = Ec2ThrottleProxy(lab_env["AWS_ENDPOINT_URL"], limits)
    try:
        drill = drill_through(proxy, estates[50], lab_env, tmp_path / "state")
    finally:
        proxy.close()
    assert proxy.throttled["RunInstances"] >= 1, "nothing was throttled: the test proved nothing"
    assert drill.exit_code == 0, drill.outcome
    assert drill.outcome["status"] == "succeeded"
    assert proxy.instances["RunInstances"] == 50, "a throttled request launched nothing, its retry all of them"
    estate = estates[50][0]
    copies = ec2_client().describe_instances(
        Filters=[{"Name": "tag:drctl:drill-run", "Values": [drill.run_id]}, {"Name": "tag-key", "Values": [TAG_BATCH]}]
    )
    launched = [i for r in copies["Reservations"] for i in r["Instances"]]
    assert len(launched) == 50
    assert {i["SubnetId"] for i in launched} == set(estate.drill_subnets)
    assert all(i["State"]["Name"] in ("shutting-down", "terminated") for i in launched), "the cleanup ended them"
