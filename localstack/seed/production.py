"""The lab's stand-in for production: the demo shop running in the primary region, writing orders and
dumping its database into the application bucket on a schedule.

Production is not part of the DR stack (it is what the stack protects), so the seeder builds it plainly: one
loopback VPC, one subnet, one security group, and a running instance per tier whose user data the lab's
instance runner executes. A drill never touches it; a failover's disaster is stopping it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from localstack.seed.clients import Clients, poll
from localstack.seed.compute import LIVE_STATES, find_instance, instance_states
from localstack.seed.config import network_octet
from localstack.seed.errors import SeedError
from localstack.seed.network import ensure_security_group, ensure_subnet, ensure_vpc, tag_spec
from localstack.seed.outputs import Names
from localstack.seed.workload import DUMP_KEY, WORKLOAD_TAG, user_data
from stacks.config import StackConfig
from stacks.naming import tags

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

FIRST_DUMP_S = 120.0
"""How long the seeder waits for production's first database dump: boot, initdb, schema, dump."""


def production_cidr(prefix: str) -> str:
    return f"127.{network_octet(prefix)}.0.0/16"


def ensure_production(
    clients: Clients, config: StackConfig, names: Names, base: Mapping[str, str], runner_on: bool
) -> dict[str, str]:
    """Production's instances by tier, running; returns once its first database dump is in the bucket. Without
    the lab's instance runner nothing runs them, so there is no dump to wait for: the estate then has no
    database to recover, and a drill fails at its first health check, as it should."""
    ec2 = clients.ec2_primary
    name, labels = f"{names.prefix}-production", tags(base, "production")
    cidr = production_cidr(names.prefix)
    vpc = ensure_vpc(ec2, name, cidr, labels)
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    subnet = ensure_subnet(ec2, name, vpc, cidr.replace(".0.0/16", ".1.0/24"), zone, labels)
    group = ensure_security_group(ec2, name, vpc, "drctl lab production", labels)
    ids = {tier.name: ensure_running(ec2, config, names, tier.name, subnet, group, base) for tier in config.tiers}
    if runner_on:
        wait_for_first_dump(clients, names)
    return ids


def ensure_running(
    ec2: EC2Client, config: StackConfig, names: Names, tier: str, subnet: str, group: str, base: Mapping[str, str]
) -> str:
    instance_name = f"{names.prefix}-production-{tier}"
    found = find_instance(ec2, instance_name)
    if found is None:
        labels = {**tags(base, "production", tier), WORKLOAD_TAG: tier}
        instance_type: Any = next(t.instance_type for t in config.tiers if t.name == tier)  # checked by EC2
        found = ec2.run_instances(
            ImageId=config.images.aws_source_amis[tier],
            InstanceType=instance_type,
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet,
            SecurityGroupIds=[group],
            UserData=user_data(config, tier, "production", names.app_data),
            TagSpecifications=tag_spec("instance", instance_name, labels),
        )["Instances"][0]["InstanceId"]
    instance_id = found

    def running() -> bool:
        state = instance_states(ec2, [instance_id]).get(instance_id)
        if state not in LIVE_STATES:
            raise SeedError(f"production instance {instance_id} is {state}; run the seeder again")
        if state == "stopped":
            ec2.start_instances(InstanceIds=[instance_id])
        return state == "running"

    poll(f"production {tier} instance {instance_id} to run", running)
    return instance_id


def wait_for_first_dump(clients: Clients, names: Names) -> None:
    def dumped() -> bool:
        try:
            clients.s3_primary.head_object(Bucket=names.app_data, Key=DUMP_KEY)
        except ClientError:
            return False
        return True

    try:
        poll(f"production's first database dump s3://{names.app_data}/{DUMP_KEY}", dumped, FIRST_DUMP_S)
    except SeedError as err:
        raise SeedError(
            f"{err}: is the lab's instance runner on (`make lab-status`; DRCTL_LAB_RUNNER must not be off)? "
            "Its instance logs are in .lab/logs/instances/"
        ) from None
