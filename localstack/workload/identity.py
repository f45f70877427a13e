"""Who this instance is (from the runner's environment) and where its peers are (from EC2, by tags)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

TIER_TAG = "drctl:tier"
DRILL_TAG = "drctl:drill-run"
WORKLOAD_TAG = "drctl-lab:workload"


@dataclass(frozen=True)
class Identity:
    instance_id: str
    private_ip: str
    region: str
    vpc_id: str
    tags: Mapping[str, str]
    disk: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Identity:
        return cls(
            instance_id=environ["DRCTL_INSTANCE_ID"],
            private_ip=environ["DRCTL_PRIVATE_IP"],
            region=environ["DRCTL_REGION"],
            vpc_id=environ.get("DRCTL_VPC_ID", ""),
            tags=json.loads(environ.get("DRCTL_INSTANCE_TAGS", "{}")),
            disk=environ.get("DRCTL_INSTANCE_DISK", "."),
        )


def peer_address(me: Identity, tier: str) -> str | None:
    """The private address of a running instance of ``tier`` in this VPC and this drill (or, outside a drill,
    not of any drill); the newest one when several match. None when there is none yet."""
    # A session per lookup: boto3's default session is not safe to share between the HTTP server's threads.
    ec2: Any = boto3.session.Session().client(
        "ec2", region_name=me.region, config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=5)
    )
    # Fields before tags: LocalStack's EC2 tests filters in the order given, and a tag filter costs it a walk
    # over every tag in the region, so a region that drills have filled with ended instances made this lookup
    # outlast its 5 s timeout.
    filters: list[dict[str, Any]] = [{"Name": "instance-state-name", "Values": ["running"]}]
    if me.vpc_id:
        filters.append({"Name": "vpc-id", "Values": [me.vpc_id]})
    filters += [{"Name": f"tag:{TIER_TAG}", "Values": [tier]}, {"Name": "tag-key", "Values": [WORKLOAD_TAG]}]
    drill = me.tags.get(DRILL_TAG)
    if drill:
        filters.append({"Name": f"tag:{DRILL_TAG}", "Values": [drill]})
    found = []
    try:
        reservations = ec2.describe_instances(Filters=filters)["Reservations"]
    except (BotoCoreError, ClientError) as err:
        # EC2 busy or restarting: no peer known yet; the caller answers 503 and asks again next time.
        print(f"looking up the {tier} tier failed: {err}", flush=True)
        return None
    for reservation in reservations:
        for inst in reservation["Instances"]:
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            if drill is None and DRILL_TAG in tags:
                continue
            if inst.get("PrivateIpAddress"):
                found.append((inst["LaunchTime"], inst["PrivateIpAddress"]))
    return max(found)[1] if found else None
