"""The generated estate of the drill-overhead benchmark: standby instances in tiers on LocalStack EC2.

Everything carries ``drctl:estate=<name>``, so an estate is found again (idempotently: a second run with the
same name launches only what is missing) and removed completely by that one tag, including any drill copy a
crashed drill left behind (copies inherit their standby's tags). Also here: the stack outputs file and the
runbook that drill the estate, since both are derived from it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from orchestrator.stack_outputs import StackOutputs

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import InstanceTypeType, ResourceTypeType
    from mypy_boto3_ec2.type_defs import FilterTypeDef, TagSpecificationTypeDef

REGION = "us-west-2"
PRIMARY_REGION = "us-east-1"  # the lab's primary region; the drill's cleanup also sweeps it (it stays empty)
ESTATE_TAG = "drctl:estate"
TIER_TAG = "drctl:tier"
ROLE_TAG = "drctl:role"
INSTANCE_TYPE: InstanceTypeType = "t3.micro"
LIVE = ["pending", "running", "stopping", "stopped"]
WAIT_S = 300.0
POLL_S = 0.5


@dataclass(frozen=True)
class EstateShape:
    name: str
    tiers: int
    per_tier: int

    @property
    def tier_names(self) -> list[str]:
        return [f"t{n}" for n in range(1, self.tiers + 1)]


@dataclass(frozen=True)
class Estate:
    shape: EstateShape
    recovery_vpc: str
    recovery_subnet: str
    recovery_groups: dict[str, str]
    drill_vpc: str
    drill_subnets: list[str]
    drill_groups: dict[str, str]
    images: dict[str, str]
    standby: dict[str, list[str]]

    def tier_of(self) -> dict[str, str]:
        """Standby instance id -> its tier: how a drill copy (whose ledger entry names its source) is placed."""
        return {i: tier for tier, ids in self.standby.items() for i in ids}


def ec2_client() -> EC2Client:
    """The benchmark's own client (not drctl's, whose SDK retries are off): standard retries, so a busy
    emulator slows the set-up down rather than failing it."""
    config = Config(retries={"total_max_attempts": 5, "mode": "standard"}, read_timeout=120)
    client: EC2Client = boto3.session.Session().client("ec2", region_name=REGION, config=config)
    return client


def poll(what: str, done: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """A bounded re-check: a stuck emulator becomes an error naming what it waited for, never a hang."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: gave up after {timeout_s:.0f}s waiting for {what}")
        time.sleep(POLL_S)


def _labels(shape: EstateShape, name: str, **more: str) -> dict[str, str]:
    return {ESTATE_TAG: shape.name, "Name": name, **more}


def _spec(kind: ResourceTypeType, labels: Mapping[str, str]) -> list[TagSpecificationTypeDef]:
    # Tagged by the create call itself, so nothing of the estate ever exists without its estate tag.
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in labels.items()]}]


def _of_estate(shape: EstateShape, name: str, *extra: FilterTypeDef) -> list[FilterTypeDef]:
    return [{"Name": f"tag:{ESTATE_TAG}", "Values": [shape.name]}, {"Name": "tag:Name", "Values": [name]}, *extra]


def _first(ids: Sequence[str]) -> str | None:
    return sorted(ids)[0] if ids else None


def _vpc(ec2: EC2Client, shape: EstateShape, name: str, cidr: str) -> str:
    found = _first([v["VpcId"] for v in ec2.describe_vpcs(Filters=_of_estate(shape, name))["Vpcs"]])
    if found is not None:
        return found
    return ec2.create_vpc(CidrBlock=cidr, TagSpecifications=_spec("vpc", _labels(shape, name)))["Vpc"]["VpcId"]


def _subnet(ec2: EC2Client, shape: EstateShape, name: str, vpc: str, cidr: str, zone: str) -> str:
    in_vpc: FilterTypeDef = {"Name": "vpc-id", "Values": [vpc]}
    found = _first([s["SubnetId"] for s in ec2.describe_subnets(Filters=_of_estate(shape, name, in_vpc))["Subnets"]])
    if found is not None:
        return found
    subnet = ec2.create_subnet(
        VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=_spec("subnet", _labels(shape, name))
    )
    return subnet["Subnet"]["SubnetId"]


def _group(ec2: EC2Client, shape: EstateShape, name: str, vpc: str) -> str:
    in_vpc: FilterTypeDef = {"Name": "vpc-id", "Values": [vpc]}
    by_name: FilterTypeDef = {"Name": "group-name", "Values": [name]}
    found = _first([g["GroupId"] for g in ec2.describe_security_groups(Filters=[in_vpc, by_name])["SecurityGroups"]])
    if found is not None:
        return found
    created = ec2.create_security_group(
        GroupName=name,
        Description=f"drctl bench {name}",
        VpcId=vpc,
        TagSpecifications=_spec("security-group", _labels(shape, name)),
    )
    return created["GroupId"]


def _image(ec2: EC2Client, shape: EstateShape, tier: str) -> str:
    """One AMI per tier, registered (no snapshot needed on LocalStack), so each tier's copies have their own
    image as in a real estate. Found again by name."""
    name = f"{shape.name}-{tier}"
    by_name: FilterTypeDef = {"Name": "name", "Values": [name]}
    images = ec2.describe_images(Owners=["self"], Filters=[by_name])["Images"]
    found = _first([i["ImageId"] for i in images if i.get("State") in ("pending", "available")])
    if found is None:
        found = ec2.register_image(
            Name=name,
            Description=f"drctl bench image of tier {tier}",
            Architecture="x86_64",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}}],
        )["ImageId"]
        labels = _labels(shape, name, **{TIER_TAG: tier})
        ec2.create_tags(Resources=[found], Tags=[{"Key": k, "Value": v} for k, v in labels.items()])
    image_id = found
    poll(f"image {image_id}", lambda: _image_state(ec2, image_id) == "available")
    return image_id


def _image_state(ec2: EC2Client, image_id: str) -> str:
    images = ec2.describe_images(ImageIds=[image_id])["Images"]
    return images[0].get("State", "missing") if images else "missing"


def live_instances(ec2: EC2Client, filters: list[FilterTypeDef]) -> dict[str, str]:
    """Instance id -> state of every instance matching ``filters`` that is not terminated (or terminating)."""
    found: dict[str, str] = {}
    states: FilterTypeDef = {"Name": "instance-state-name", "Values": LIVE}
    # State first, as the provider does: the emulator then skips terminated instances before any tag lookup.
    for page in ec2.get_paginator("describe_instances").paginate(Filters=[states, *filters]):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                found[inst["InstanceId"]] = inst["State"]["Name"]
    return found


def _tier_filters(shape: EstateShape, tier: str) -> list[FilterTypeDef]:
    return [
        {"Name": f"tag:{ESTATE_TAG}", "Values": [shape.name]},
        {"Name": f"tag:{TIER_TAG}", "Values": [tier]},
        {"Name": f"tag:{ROLE_TAG}", "Values": ["standby"]},
    ]


def _standby(ec2: EC2Client, shape: EstateShape, tier: str, image: str, subnet: str, group: str) -> list[str]:
    """The tier's ``per_tier`` standby instances: those already there (not drill copies), plus one
    RunInstances batch for the missing ones. Drill copies carry the same tags, so they are told apart by
    their drill tag and never counted as standbys."""

    def standbys() -> list[str]:
        live = live_instances(ec2, _tier_filters(shape, tier))
        if not live:
            return []
        described = ec2.describe_instances(InstanceIds=list(live))["Reservations"]
        return sorted(
            i["InstanceId"]
            for r in described
            for i in r["Instances"]
            if not any(t["Key"] == "drctl:drill-run" for t in i.get("Tags", []))
        )

    have = standbys()
    missing = shape.per_tier - len(have)
    if missing > 0:
        labels = _labels(shape, f"{shape.name}-{tier}-standby", **{TIER_TAG: tier, ROLE_TAG: "standby"})
        ec2.run_instances(
            ImageId=image,
            InstanceType=INSTANCE_TYPE,
            MinCount=missing,
            MaxCount=missing,
            SubnetId=subnet,
            SecurityGroupIds=[group],
            TagSpecifications=_spec("instance", labels),
        )
        have = standbys()
    if len(have) < shape.per_tier:
        raise SystemExit(f"bench: tier {tier} of estate {shape.name} has {len(have)} standbys, wanted {shape.per_tier}")
    return have[: shape.per_tier]


def _converge_stopped(ec2: EC2Client, ids: Sequence[str]) -> None:
    """Stop what runs until every standby is ``stopped`` (a pending one cannot be stopped yet: poll it)."""

    def all_stopped() -> bool:
        states: dict[str, str] = {}
        for i in range(0, len(ids), 200):
            for r in ec2.describe_instances(InstanceIds=list(ids[i : i + 200]))["Reservations"]:
                states.update({inst["InstanceId"]: inst["State"]["Name"] for inst in r["Instances"]})
        running = [i for i, s in states.items() if s == "running"]
        if running:
            ec2.stop_instances(InstanceIds=running)
        return all(s == "stopped" for s in states.values())

    poll(f"{len(ids)} standby instances to stop", all_stopped)


def ensure_estate(ec2: EC2Client, shape: EstateShape) -> Estate:
    """Create (or find) the estate: recovery VPC and subnet, isolated drill VPC with two subnets, a security
    group per tier in each VPC, an AMI per tier and ``per_tier`` stopped standby instances per tier."""
    n = shape.name
    recovery_vpc = _vpc(ec2, shape, f"{n}-recovery", "10.200.0.0/16")
    recovery_subnet = _subnet(ec2, shape, f"{n}-recovery-a", recovery_vpc, "10.200.0.0/20", f"{REGION}a")
    drill_vpc = _vpc(ec2, shape, f"{n}-drill", "10.201.0.0/16")
    drill_subnets = [
        _subnet(ec2, shape, f"{n}-drill-{zone}", drill_vpc, f"10.201.{16 * i}.0/20", f"{REGION}{zone}")
        for i, zone in enumerate(("a", "b"))
    ]
    tiers = shape.tier_names
    recovery_groups = {t: _group(ec2, shape, f"{n}-recovery-{t}", recovery_vpc) for t in tiers}
    drill_groups = {t: _group(ec2, shape, f"{n}-drill-{t}", drill_vpc) for t in tiers}
    images = {t: _image(ec2, shape, t) for t in tiers}
    standby = {t: _standby(ec2, shape, t, images[t], recovery_subnet, recovery_groups[t]) for t in tiers}
    _converge_stopped(ec2, [i for ids in standby.values() for i in ids])
    return Estate(
        shape, recovery_vpc, recovery_subnet, recovery_groups, drill_vpc, drill_subnets, drill_groups, images, standby
    )


def stack_outputs(estate: Estate) -> dict[str, Any]:
    """Stack outputs in the lab seeder's shape, with the network, drill, image and standby fields of this
    estate. The storage and DNS fields are placeholders: no step of the benchmark's runbook reads them, and a
    drill touches DNS only through a ``dns.*`` step. Validated against the contract before it is written."""
    doc: dict[str, Any] = {
        "schema_version": 1,
        "stack": estate.shape.name,
        "primary_cloud": "aws",
        "recovery_cloud": "aws",
        "primary_region": PRIMARY_REGION,
        "recovery_region": REGION,
        "backup_bucket": None,
        "backup_bucket_region": None,
        "backup_replica_bucket": None,
        "backup_replica_region": None,
        "vault_account": None,
        "vault_container": None,
        "vault_blob_endpoint": None,
        "azure_resource_group": None,
        "recovery_network_id": estate.recovery_vpc,
        "recovery_subnet_ids": [estate.recovery_subnet],
        "recovery_public_subnet_ids": [],
        "security_group_ids": estate.recovery_groups,
        "drill_network_id": estate.drill_vpc,
        "drill_subnet_ids": estate.drill_subnets,
        "drill_security_group_ids": estate.drill_groups,
        "image_ids": estate.images,
        "standby_mode": "stopped_instances",
        "standby_tier_order": estate.shape.tier_names,
        "standby_instance_ids": estate.standby,
        "standby_template_ids": {},
        "dns_provider": "route53",
        "dns_zone_id": "UNUSED-BY-THE-BENCH",
        "production_record_name": "app.bench.drctl.test",
        "health_check_id": None,
        "drill_dns_zone_id": "UNUSED-BY-THE-BENCH",
        "drill_record_name": "app.bench-drill.drctl.internal",
        "orchestrator_role_arn": None,
    }
    StackOutputs.model_validate(doc)
    return doc


def runbook_yaml(estate: Estate, interval_s: int, status_checks: bool) -> str:
    """Per tier ``start-tN`` (``compute.start``: in a drill, a copy of each standby in the drill network) then
    ``tN-healthy`` (``compute.wait_healthy``, needing the start). No retries, so a failure shows as one."""
    q = json.dumps  # a JSON string is a YAML scalar that no YAML 1.1 rule can reinterpret

    lines = [
        "apiVersion: drctl/v1",
        "kind: Runbook",
        "metadata:",
        f"  name: {q('bench-' + estate.shape.name.removeprefix('bench-'))}",
        f"  description: {q(f'Drill overhead benchmark: {estate.shape.tiers} tiers x {estate.shape.per_tier}')}",
        "spec:",
        "  steps:",
    ]
    for number, tier in enumerate(estate.shape.tier_names, 1):
        select = f"tags: {{{q(TIER_TAG)}: {q(tier)}, {q(ESTATE_TAG)}: {q(estate.shape.name)}}}, region: {q(REGION)}"
        checks = "true" if status_checks else "false"
        lines += [
            f"    - id: start-{tier}",
            "      action: compute.start",
            f"      tier: {number}",
            f"      with: {{{select}, timeout: 10m}}",
            f"    - id: {tier}-healthy",
            "      action: compute.wait_healthy",
            f"      tier: {number}",
            f"      needs: [start-{tier}]",
            f"      with: {{{select}, interval: {interval_s}s, status_checks: {checks}, timeout: 10m}}",
        ]
    return "\n".join(lines) + "\n"


def status_checks_reported(ec2: EC2Client, estate: Estate) -> bool:
    """Whether the emulator answers DescribeInstanceStatus with real check results for a running instance
    (a stopped one says ``not-applicable`` anywhere, so it proves nothing). One throwaway instance, tagged
    with the estate but no tier (no step selects it), is launched for the question and terminated after it.
    Without results, ``compute.wait_healthy`` with ``status_checks: true`` would wait until its timeout."""
    tier = estate.shape.tier_names[0]
    labels = _labels(estate.shape, f"{estate.shape.name}-status-probe", **{ROLE_TAG: "probe"})
    probe = ec2.run_instances(
        ImageId=estate.images[tier],
        InstanceType=INSTANCE_TYPE,
        MinCount=1,
        MaxCount=1,
        SubnetId=estate.recovery_subnet,
        TagSpecifications=_spec("instance", labels),
    )["Instances"][0]["InstanceId"]
    try:
        answer: list[str] = []

        def checked() -> bool:
            statuses = ec2.describe_instance_status(InstanceIds=[probe], IncludeAllInstances=True)["InstanceStatuses"]
            if not statuses or statuses[0].get("InstanceState", {}).get("Name") != "running":
                return False
            answer.append(str(statuses[0].get("InstanceStatus", {}).get("Status")))
            return True

        poll(f"status probe {probe} to run", checked, timeout_s=60.0)
        return answer[-1] in ("ok", "initializing")
    finally:
        ec2.terminate_instances(InstanceIds=[probe])


def teardown(ec2: EC2Client, name: str) -> list[str]:
    """Remove everything tagged ``drctl:estate=name``: instances (standbys and any leftover drill copy), then
    security groups, subnets, VPCs and images. Best effort: what could not be removed is returned, named."""
    problems: list[str] = []
    shape_filter: list[FilterTypeDef] = [{"Name": f"tag:{ESTATE_TAG}", "Values": [name]}]
    live = list(live_instances(ec2, shape_filter))
    if live:
        for i in range(0, len(live), 200):
            ec2.terminate_instances(InstanceIds=live[i : i + 200])
        poll(f"{len(live)} instances of estate {name} to terminate", lambda: not live_instances(ec2, shape_filter))
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs(Filters=shape_filter)["Vpcs"]]
    in_vpcs: FilterTypeDef = {"Name": "vpc-id", "Values": vpcs}

    def attempt(what: str, call: Callable[..., object], **kwargs: str) -> None:
        try:
            call(**kwargs)
        except ClientError as err:
            problems.append(f"{what}: {err.response.get('Error', {}).get('Code', err)}")

    if vpcs:
        for g in ec2.describe_security_groups(Filters=[in_vpcs])["SecurityGroups"]:
            if g["GroupName"] != "default":
                attempt(f"security group {g['GroupId']}", ec2.delete_security_group, GroupId=g["GroupId"])
        for s in ec2.describe_subnets(Filters=[in_vpcs])["Subnets"]:
            attempt(f"subnet {s['SubnetId']}", ec2.delete_subnet, SubnetId=s["SubnetId"])
        for vpc in vpcs:
            attempt(f"vpc {vpc}", ec2.delete_vpc, VpcId=vpc)
    for image in ec2.describe_images(Owners=["self"], Filters=shape_filter)["Images"]:
        attempt(f"image {image['ImageId']}", ec2.deregister_image, ImageId=image["ImageId"])
    return problems
