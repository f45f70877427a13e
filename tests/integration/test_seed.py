"""The lab seeder on the real lab: what it writes, what it builds, and that a second run changes nothing.

The seeder runs as a user runs it (a separate process) under a name prefix of this module's own, so it never
meets another test's estate or a developer's ``drctl-lab`` one. Everything carrying that prefix is removed
afterwards, found by tag, name, zone comment and caller reference rather than by the outputs, so even a seeding
that failed half-way is cleaned up.
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from localstack.seed.outputs import Names
from localstack.seed.sample_app import POINTS_WANTED
from localstack.seed.workload import DUMP_KEY
from orchestrator.errors import ExitCode
from orchestrator.stack_outputs import StackOutputs, load_stack_outputs
from tests.support.cli import drctl

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import FilterTypeDef

from tests.support.cli import process_env
from tests.support.estate import (
    PRIMARY,
    RECOVERY,
    TIERS,
    Lab,
    delete_estate,
    estate_inventory,
    lab_clients,
    run_seed,
)

# --- the seeded estate shared by this module's tests ------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    prefix: str
    env: dict[str, str]
    out: Path
    result: subprocess.CompletedProcess[str]
    lab: Lab

    @property
    def outputs(self) -> StackOutputs:
        return load_stack_outputs(self.out)


@pytest.fixture(scope="module")
def seeded(lab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    prefix = f"ts-{uuid.uuid4().hex[:10]}"
    lab = lab_clients(lab_env)
    out = tmp_path_factory.mktemp("seed") / "outputs.json"
    env = process_env(lab_env)
    try:
        result = run_seed(out, prefix, env)
        yield Seeded(prefix, env, out, result, lab)
    finally:
        delete_estate(lab, prefix)


@pytest.fixture
def outputs(seeded: Seeded) -> StackOutputs:
    assert seeded.result.returncode == 0, seeded.result.stderr
    return seeded.outputs


@pytest.mark.lab
def test_seed_writes_lab_stack_outputs_and_a_summary(seeded: Seeded, outputs: StackOutputs) -> None:
    assert "Traceback" not in seeded.result.stderr
    assert seeded.prefix in seeded.result.stderr
    # A test's estate is a stack of its own, so runbooks selecting by `drctl:stack` never reach another estate.
    assert outputs.stack == seeded.prefix
    assert (outputs.primary_region, outputs.recovery_region) == (PRIMARY, RECOVERY)
    assert outputs.standby_tier_order == TIERS
    assert outputs.backup_bucket == f"{seeded.prefix}-backups"
    assert outputs.vault_container is None  # the lab stack exports no Azure vault
    # The file is exactly the validated model: nothing extra, nothing missing.
    assert json.loads(seeded.out.read_text()) == outputs.model_dump(mode="json")


@pytest.mark.lab
def test_backup_bucket_is_versioned_encrypted_private_and_replicated(seeded: Seeded, outputs: StackOutputs) -> None:
    s3 = seeded.lab.s3_primary
    assert outputs.backup_bucket is not None
    assert outputs.backup_replica_bucket is not None
    assert s3.get_bucket_versioning(Bucket=outputs.backup_bucket).get("Status") == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=outputs.backup_bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == "AES256"
    block = s3.get_public_access_block(Bucket=outputs.backup_bucket)["PublicAccessBlockConfiguration"]
    assert all(
        block.get(k) for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    )
    replica = seeded.lab.s3_recovery
    assert replica.get_bucket_location(Bucket=outputs.backup_replica_bucket).get("LocationConstraint") == RECOVERY
    assert replica.get_bucket_versioning(Bucket=outputs.backup_replica_bucket).get("Status") == "Enabled"
    replication = s3.get_bucket_replication(Bucket=outputs.backup_bucket)["ReplicationConfiguration"]
    destination = replication["Rules"][0]["Destination"]["Bucket"]
    assert destination == f"arn:aws:s3:::{outputs.backup_replica_bucket}"


@pytest.mark.lab
def test_backup_set_holds_a_full_and_incremental_recovery_points(seeded: Seeded, outputs: StackOutputs) -> None:
    result = drctl("backup", "list", Names(seeded.prefix).set_url, "--json", env=seeded.env)
    assert result.returncode == 0, result.stderr
    points = json.loads(result.stdout)
    assert len(points) >= POINTS_WANTED
    assert [p["mode"] for p in points[:3]] == ["full", "incremental", "incremental"]
    # Each incremental builds on the point before it, and the source really changed between them.
    assert [p["parent"] for p in points[1:3]] == [p["id"] for p in points[:2]]
    assert len({p["objects"] for p in points[:3]}) > 1
    # The database part of the source is production's own pg_dump (custom format), not a file the seeder wrote.
    dump = seeded.lab.s3_primary.get_object(Bucket=Names(seeded.prefix).app_data, Key=DUMP_KEY)["Body"].read()
    assert dump.startswith(b"PGDMP")


@pytest.mark.lab
def test_standby_instances_are_stopped_tagged_and_private(seeded: Seeded, outputs: StackOutputs) -> None:
    ec2 = seeded.lab.ec2
    assert list(outputs.standby_instance_ids) == TIERS
    ids = [i for tier in TIERS for i in outputs.standby_instance_ids[tier]]
    assert ids
    assert len(set(ids)) == len(ids)
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    instances = {i["InstanceId"]: i for r in reservations for i in r["Instances"]}
    for tier in TIERS:
        for instance_id in outputs.standby_instance_ids[tier]:
            instance = instances[instance_id]
            labels = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            assert instance["State"]["Name"] == "stopped"
            assert (labels.get("drctl:tier"), labels.get("drctl:role")) == (tier, "standby")
            assert instance.get("SubnetId") in outputs.recovery_subnet_ids
            assert [g["GroupId"] for g in instance.get("SecurityGroups", [])] == [outputs.security_group_ids[tier]]
            assert instance.get("ImageId") == outputs.image_ids[tier]
    images = ec2.describe_images(ImageIds=list(outputs.image_ids.values()))["Images"]
    assert {i["ImageId"]: i.get("State") for i in images} == dict.fromkeys(outputs.image_ids.values(), "available")


@pytest.mark.lab
def test_recovery_network_is_public_and_private_and_drill_network_is_isolated(
    seeded: Seeded, outputs: StackOutputs
) -> None:
    ec2 = seeded.lab.ec2

    def gateways_of(vpc: str) -> list[str]:
        attached: FilterTypeDef = {"Name": "attachment.vpc-id", "Values": [vpc]}
        return [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=[attached])["InternetGateways"]]

    def subnet_vpcs(ids: list[str]) -> set[str]:
        return {s["VpcId"] for s in ec2.describe_subnets(SubnetIds=ids)["Subnets"]}

    def default_routes(vpc: str) -> list[str]:
        in_vpc: FilterTypeDef = {"Name": "vpc-id", "Values": [vpc]}
        tables = ec2.describe_route_tables(Filters=[in_vpc])["RouteTables"]
        return [
            t["RouteTableId"]
            for t in tables
            for r in t.get("Routes", [])
            if r.get("DestinationCidrBlock") == "0.0.0.0/0"
        ]

    assert len(outputs.recovery_subnet_ids) == len(outputs.recovery_public_subnet_ids) == 2
    recovery_subnets = outputs.recovery_subnet_ids + outputs.recovery_public_subnet_ids
    assert subnet_vpcs(recovery_subnets) == {outputs.recovery_network_id}
    zones = {s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=outputs.recovery_subnet_ids)["Subnets"]}
    assert len(zones) == 2
    assert len(gateways_of(outputs.recovery_network_id)) == 1
    assert default_routes(outputs.recovery_network_id)

    assert outputs.drill_network_id != outputs.recovery_network_id
    assert subnet_vpcs(outputs.drill_subnet_ids) == {outputs.drill_network_id}
    assert gateways_of(outputs.drill_network_id) == []
    assert default_routes(outputs.drill_network_id) == []
    groups = ec2.describe_security_groups(GroupIds=list(outputs.drill_security_group_ids.values()))["SecurityGroups"]
    assert {g["VpcId"] for g in groups} == {outputs.drill_network_id}


@pytest.mark.lab
def test_failover_records_and_a_separate_private_drill_zone(seeded: Seeded, outputs: StackOutputs) -> None:
    r53 = seeded.lab.route53
    fqdn = outputs.production_record_name + "."
    records = r53.list_resource_record_sets(HostedZoneId=outputs.dns_zone_id)["ResourceRecordSets"]
    failover = {r.get("Failover"): r for r in records if r["Name"] == fqdn}
    assert set(failover) == {"PRIMARY", "SECONDARY"}
    assert failover["PRIMARY"].get("HealthCheckId") == outputs.health_check_id
    assert "HealthCheckId" not in failover["SECONDARY"]
    assert outputs.health_check_id is not None
    r53.get_health_check(HealthCheckId=outputs.health_check_id)

    drill = r53.get_hosted_zone(Id=outputs.drill_dns_zone_id)
    assert drill["HostedZone"].get("Config", {}).get("PrivateZone") is True
    assert [v.get("VPCId") for v in drill.get("VPCs", [])] == [outputs.drill_network_id]
    drill_records = r53.list_resource_record_sets(HostedZoneId=outputs.drill_dns_zone_id)["ResourceRecordSets"]
    assert outputs.drill_record_name + "." in {r["Name"] for r in drill_records}
    assert outputs.drill_record_name + "." not in {r["Name"] for r in records}


@pytest.mark.lab
def test_vault_container_and_orchestrator_role_exist(seeded: Seeded, outputs: StackOutputs) -> None:
    names = Names(seeded.prefix)
    assert seeded.lab.blobs.get_container_client(names.vault).exists()
    role = seeded.lab.iam.get_role(RoleName=names.orchestrator_role)["Role"]
    assert role["Arn"] == outputs.orchestrator_role_arn


@pytest.mark.lab
def test_a_second_seed_reuses_everything(seeded: Seeded, outputs: StackOutputs, tmp_path: Path) -> None:
    before = estate_inventory(seeded.lab, seeded.prefix)
    assert len(before["instances"]) == sum(len(ids) for ids in outputs.standby_instance_ids.values())
    again = run_seed(tmp_path / "again.json", seeded.prefix, seeded.env)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads(seeded.out.read_text())
    assert estate_inventory(seeded.lab, seeded.prefix) == before
    listed = drctl("backup", "list", Names(seeded.prefix).set_url, "--json", env=seeded.env)
    assert len(json.loads(listed.stdout)) == POINTS_WANTED


# --- failures need no lab: they are refused before anything is touched -------------------------------------------


def test_an_unreachable_lab_is_one_line_naming_make_lab_up(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # bound, never listening: connections are refused
        env = {
            **process_env({}),
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        }
        result = run_seed(tmp_path / "out.json", "ts-unreachable", env)
    assert result.returncode == ExitCode.UNREACHABLE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Traceback" not in result.stderr
    assert "make lab-up" in lines[0]
    assert not (tmp_path / "out.json").exists()


def test_without_a_lab_endpoint_it_refuses_to_touch_any_cloud(tmp_path: Path) -> None:
    result = run_seed(tmp_path / "out.json", "ts-noendpoint", process_env({}))
    assert result.returncode == ExitCode.INVALID_INPUT
    assert len(result.stderr.strip().splitlines()) == 1
    assert "AWS_ENDPOINT_URL" in result.stderr
    assert not (tmp_path / "out.json").exists()
