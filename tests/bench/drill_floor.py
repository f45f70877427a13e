"""The yardsticks ``make bench-drill`` holds drctl's drill against, on the same estate in the same run.

- **The batched floor**: what a hand-written script does at best with EC2's own batch calls, tier by tier in
  recovery order: one RunInstances per drill subnet for the whole tier, waited to ``running`` with one
  DescribeInstances per poll; then one TerminateInstances for every copy, waited to ``terminated``. No
  selection, no journal, no health checks: a floor, not a drill.
- **The simulated limit's floor**: the least time EC2's RunInstances resource bucket allows for launching the
  estate's copies (``max(0, copies - bucket) / refill``), for the drill behind the throttle simulator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.bench.drill_estate import ESTATE_TAG, INSTANCE_TYPE, POLL_S, TIER_TAG, Estate, live_instances, poll
from tests.support.ec2_throttle import Limits

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef

FLOOR_TAG = "drctl:bench-floor"


@dataclass(frozen=True)
class Floor:
    tiers: dict[str, float]
    """Per tier: its RunInstances calls until every instance of the tier is running."""
    terminate_s: float
    """One TerminateInstances for all, until every one is terminated."""
    calls: dict[str, int]

    @property
    def start_s(self) -> float:
        return sum(self.tiers.values())


def batched_floor(ec2: EC2Client, estate: Estate) -> Floor:
    """Launch a copy of every standby, tier by tier, the way a batch-minded script would, then end them."""
    run = f"floor-{int(time.time())}"
    calls: dict[str, int] = {"RunInstances": 0, "DescribeInstances": 0, "TerminateInstances": 0}
    tiers: dict[str, float] = {}
    everyone: list[str] = []
    for tier in estate.shape.tier_names:
        began = time.perf_counter()
        wanted = len(estate.standby[tier])
        ids: list[str] = []
        for n, subnet in enumerate(estate.drill_subnets):
            count = wanted // len(estate.drill_subnets) + (1 if n < wanted % len(estate.drill_subnets) else 0)
            if count == 0:
                continue
            answer = ec2.run_instances(
                ImageId=estate.images[tier],
                InstanceType=INSTANCE_TYPE,
                SubnetId=subnet,
                SecurityGroupIds=[estate.drill_groups[tier]],
                MinCount=count,
                MaxCount=count,
                TagSpecifications=[
                    {
                        "ResourceType": "instance",
                        "Tags": [
                            {"Key": ESTATE_TAG, "Value": estate.shape.name},
                            {"Key": TIER_TAG, "Value": f"{tier}-floor"},
                            {"Key": FLOOR_TAG, "Value": run},
                        ],
                    }
                ],
            )
            calls["RunInstances"] += 1
            ids += [i["InstanceId"] for i in answer["Instances"]]
        _until(ec2, ids, "running", calls)
        tiers[tier] = time.perf_counter() - began
        everyone += ids
    began = time.perf_counter()
    for i in range(0, len(everyone), 1000):
        ec2.terminate_instances(InstanceIds=everyone[i : i + 1000])
        calls["TerminateInstances"] += 1
    _until(ec2, everyone, "terminated", calls)
    mine: list[FilterTypeDef] = [{"Name": f"tag:{FLOOR_TAG}", "Values": [run]}]
    poll("the floor's instances to be gone", lambda: not live_instances(ec2, mine))
    return Floor(tiers, time.perf_counter() - began, calls)


def _until(ec2: EC2Client, ids: list[str], state: str, calls: dict[str, int]) -> None:
    def reached() -> bool:
        calls["DescribeInstances"] += 1
        pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=ids)
        states = [i["State"]["Name"] for page in pages for r in page["Reservations"] for i in r["Instances"]]
        return len(states) == len(ids) and all(s == state for s in states)

    deadline = time.monotonic() + 300
    while not reached():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: the floor's {len(ids)} instances did not reach {state} in 300s")
        time.sleep(POLL_S)


def limit_floor_s(limits: Limits, copies: int) -> float:
    """The least time the RunInstances resource bucket allows for launching ``copies`` instances."""
    capacity, refill = limits.resource["RunInstances"]
    return max(0.0, copies - capacity) / refill
