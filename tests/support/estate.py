"""The lab's seeded demo estate for tests: run the seeder under a prefix of the test's own, reach what it made,
and remove all of it afterwards (every step runs, failures reported together)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from botocore.exceptions import ClientError

from localstack.seed.clients import SEED_TAG
from localstack.seed.compute import LIVE_STATES
from localstack.seed.outputs import Names
from tests.support.lab import empty_bucket

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_s3 import S3Client

REPO = Path(__file__).resolve().parents[2]
PRIMARY, RECOVERY = "us-east-1", "us-west-2"
TIERS = ["db", "app", "web"]
SEED_TIMEOUT_S = 180
WAIT_S = 60.0


def run_seed(out: Path, prefix: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localstack.seed", "--out", str(out), "--name-prefix", prefix],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=SEED_TIMEOUT_S,
        check=False,
    )


@dataclass(frozen=True)
class Lab:
    s3_primary: S3Client
    s3_recovery: S3Client
    ec2: EC2Client  # the recovery region
    ec2_primary: EC2Client  # the primary region, where the estate's production runs
    route53: Route53Client
    iam: Any  # no IAM stubs in this project
    blobs: BlobServiceClient


def lab_clients(lab_env: Mapping[str, str]) -> Lab:
    session = boto3.session.Session(
        aws_access_key_id=lab_env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=lab_env["AWS_SECRET_ACCESS_KEY"]
    )
    url = lab_env["AWS_ENDPOINT_URL"]
    return Lab(
        s3_primary=session.client("s3", region_name=PRIMARY, endpoint_url=url),
        s3_recovery=session.client("s3", region_name=RECOVERY, endpoint_url=url),
        ec2=session.client("ec2", region_name=RECOVERY, endpoint_url=url),
        ec2_primary=session.client("ec2", region_name=PRIMARY, endpoint_url=url),
        route53=session.client("route53", region_name=PRIMARY, endpoint_url=url),
        iam=session.client("iam", region_name=PRIMARY, endpoint_url=url),
        blobs=BlobServiceClient.from_connection_string(lab_env["AZURE_STORAGE_CONNECTION_STRING"]),
    )


def wait_for(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


# --- finding and removing an estate by its prefix --------------------------------------------------------------


def by_seed(prefix: str) -> FilterTypeDef:
    return {"Name": f"tag:{SEED_TAG}", "Values": [prefix]}


def live_instances(ec2: EC2Client, prefix: str) -> set[str]:
    live: FilterTypeDef = {"Name": "instance-state-name", "Values": LIVE_STATES}
    reservations = ec2.describe_instances(Filters=[live, by_seed(prefix)])["Reservations"]
    return {i["InstanceId"] for r in reservations for i in r["Instances"]}


def own_images(ec2: EC2Client, prefix: str) -> set[str]:
    by_name: FilterTypeDef = {"Name": "name", "Values": [f"{prefix}-*"]}
    return {i["ImageId"] for i in ec2.describe_images(Owners=["self"], Filters=[by_name])["Images"]}


def own_zones(r53: Route53Client, prefix: str) -> set[str]:
    return {
        z["Id"].rsplit("/", 1)[-1]
        for page in r53.get_paginator("list_hosted_zones").paginate()
        for z in page["HostedZones"]
        if z.get("Config", {}).get("Comment", "").endswith(f"seeded for {prefix}")
    }


def own_health_checks(r53: Route53Client, prefix: str) -> set[str]:
    reference = Names(prefix).health_check_reference
    return {h["Id"] for h in r53.list_health_checks()["HealthChecks"] if h["CallerReference"] == reference}


def estate_inventory(lab: Lab, prefix: str) -> dict[str, set[str]]:
    """Every countable resource of the estate, for comparing one seeding with the next."""
    ec2, seed = lab.ec2, [by_seed(prefix)]
    return {
        "instances": live_instances(ec2, prefix),
        "images": own_images(ec2, prefix),
        "vpcs": {v["VpcId"] for v in ec2.describe_vpcs(Filters=seed)["Vpcs"]},
        "subnets": {s["SubnetId"] for s in ec2.describe_subnets(Filters=seed)["Subnets"]},
        "groups": {g["GroupId"] for g in ec2.describe_security_groups(Filters=seed)["SecurityGroups"]},
        "gateways": {g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=seed)["InternetGateways"]},
        "route_tables": {t["RouteTableId"] for t in ec2.describe_route_tables(Filters=seed)["RouteTables"]},
        "zones": own_zones(lab.route53, prefix),
        "health_checks": own_health_checks(lab.route53, prefix),
    }


def empty_and_delete_bucket(s3: S3Client, name: str) -> None:
    try:
        empty_bucket(s3, name)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return
        raise
    s3.delete_bucket(Bucket=name)


def delete_instances_and_images(ec2: EC2Client, prefix: str) -> None:
    doomed = sorted(live_instances(ec2, prefix))
    if doomed:
        ec2.terminate_instances(InstanceIds=doomed)
        wait_for("seeded instances to terminate", lambda: not live_instances(ec2, prefix))
    for image in own_images(ec2, prefix):
        ec2.deregister_image(ImageId=image)


def delete_networks(ec2: EC2Client, prefix: str) -> None:
    seed = [by_seed(prefix)]
    groups = ec2.describe_security_groups(Filters=seed)["SecurityGroups"]
    for group in groups:  # rules first: a group referenced by another's rule cannot be deleted
        if group.get("IpPermissions"):
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    for group in groups:
        ec2.delete_security_group(GroupId=group["GroupId"])
    for table in ec2.describe_route_tables(Filters=seed)["RouteTables"]:
        for assoc in table.get("Associations", []):
            if not assoc.get("Main"):
                ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    for gateway in ec2.describe_internet_gateways(Filters=seed)["InternetGateways"]:
        for attachment in gateway.get("Attachments", []):
            ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=attachment["VpcId"])
        ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
    for subnet in ec2.describe_subnets(Filters=seed)["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    for vpc in ec2.describe_vpcs(Filters=seed)["Vpcs"]:
        ec2.delete_vpc(VpcId=vpc["VpcId"])


def delete_templates(ec2: EC2Client, prefix: str) -> None:
    """The standby tiers' launch templates (named after the estate's standby instances)."""
    by_name: FilterTypeDef = {"Name": "launch-template-name", "Values": [f"{prefix}-standby-*"]}
    for template in ec2.describe_launch_templates(Filters=[by_name])["LaunchTemplates"]:
        ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])


def delete_dns(r53: Route53Client, prefix: str) -> None:
    for zone in own_zones(r53, prefix):
        for record in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]:
            if record["Type"] not in ("NS", "SOA"):
                r53.change_resource_record_sets(
                    HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}
                )
        r53.delete_hosted_zone(Id=zone)
    for check in own_health_checks(r53, prefix):
        r53.delete_health_check(HealthCheckId=check)


def delete_roles(iam: Any, names: Names) -> None:
    for role in (names.orchestrator_role, names.replication_role):
        try:
            policies = iam.list_role_policies(RoleName=role)["PolicyNames"]
        except ClientError:
            continue  # never created
        for policy in policies:
            iam.delete_role_policy(RoleName=role, PolicyName=policy)
        iam.delete_role(RoleName=role)


def delete_estate(lab: Lab, prefix: str) -> None:
    """Remove everything the seeder made under ``prefix``; every step runs, and any failure is reported after."""
    names = Names(prefix)
    steps: list[Callable[[], None]] = [
        # Production first: its db dumps into the app-data bucket deleted below, and its programs run until then.
        lambda: delete_instances_and_images(lab.ec2_primary, prefix),
        lambda: delete_networks(lab.ec2_primary, prefix),
        lambda: delete_instances_and_images(lab.ec2, prefix),
        lambda: delete_networks(lab.ec2, prefix),
        lambda: delete_templates(lab.ec2, prefix),
        lambda: delete_dns(lab.route53, prefix),
        lambda: empty_and_delete_bucket(lab.s3_primary, names.backups),
        lambda: empty_and_delete_bucket(lab.s3_recovery, names.replica),
        lambda: empty_and_delete_bucket(lab.s3_primary, names.app_data),
        lambda: delete_roles(lab.iam, names),
        lambda: lab.blobs.delete_container(names.vault),
    ]
    failures: list[str] = []
    for step in steps:
        try:
            step()
        except ResourceNotFoundError:
            continue
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err}")
    leftovers = {kind: ids for kind, ids in estate_inventory(lab, prefix).items() if ids}
    production = live_instances(lab.ec2_primary, prefix)
    if production:
        leftovers["production instances"] = production
    if leftovers:
        failures.append(f"still present: {leftovers}")
    assert not failures, f"cleaning up seeded estate {prefix} failed: {failures}"
