"""Wiring, not presence: each checked-in stack connects its resources the way a working DR estate needs.

Issue #16: six breaking edits to ``stacks/`` passed every test, because the tests asked "is there a replication
config?" rather than "does it copy the source bucket into the replica, with the replica's key, once both are
versioned?". These tests follow the references between resources (ids, ARNs, providers, dependencies) from the
values the runbooks read (the stack exports) down to the resources, on the estates the checked-in stacks build.
``python -m tests.stacks.mutants`` shows which breaking edits they catch.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi.runtime.mocks
import pytest

from stacks.components.replicated_storage import (
    AwsStorageArgs,
    ReplicatedBackupStorage,
    ReplicatedBackupStorageArgs,
)
from stacks.config import StackConfig, StorageConfig
from stacks.naming import STACK_TAG
from stacks.policy import RecordedResource
from tests.stacks.pulumi_harness import STACK_NAMES, Run, run, run_stack
from tests.stacks.samples import TAGS, aws_pair, azure_target, checked_in

BUCKET = "aws:s3/bucket:Bucket"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
KMS_KEY = "aws:kms/key:Key"
ROLE, ROLE_POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
POLICY, ATTACHMENT = "aws:iam/policy:Policy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
VPC, SUBNET = "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet"
ROUTE_TABLE, ASSOCIATION = "aws:ec2/routeTable:RouteTable", "aws:ec2/routeTableAssociation:RouteTableAssociation"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
INSTANCE, TEMPLATE = "aws:ec2/instance:Instance", "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE_STATE = "aws:ec2transitgateway/instanceState:InstanceState"
AMI_COPY = "aws:ec2/amiCopy:AmiCopy"
RECORD, HEALTH_CHECK, ZONE = "aws:route53/record:Record", "aws:route53/healthCheck:HealthCheck", "aws:route53/zone:Zone"
ACCOUNT, BLOB_SERVICE = "azure-native:storage:StorageAccount", "azure-native:storage:BlobServiceProperties"
CONTAINER = "azure-native:storage:BlobContainer"
VNET, VNET_SUBNET = "azure-native:network:VirtualNetwork", "azure-native:network:Subnet"
NSG, NIC = "azure-native:network:NetworkSecurityGroup", "azure-native:network:NetworkInterface"
VM = "azure-native:compute:VirtualMachine"
IMAGE_VERSION = "azure-native:compute:GalleryImageVersion"
TRAFFIC_MANAGER = "azure-native:trafficmanager:Profile"
PRIVATE_ZONE = "azure-native:privatedns:PrivateZone"
ZONE_LINK = "azure-native:privatedns:VirtualNetworkLink"
PRIVATE_RECORD = "azure-native:privatedns:PrivateRecordSet"

T = TypeVar("T")
ANYWHERE = "0.0.0.0/0"
# Route targets that leave a VPC; a route with none of them is VPC-local.
ROUTE_EXITS = ("gatewayId", "natGatewayId", "transitGatewayId", "vpcPeeringConnectionId", "egressOnlyGatewayId")

# Which checked-in stack exercises which path; each test re-checks the assumption so none can pass vacuously.
AWS_RECOVERY = ("lab", "azure-to-aws")
AZURE_RECOVERY = ("aws-to-azure",)
ROUTE53 = ("lab", "azure-to-aws")


# --- reading a run -----------------------------------------------------------------------------------------------


def _one(items: list[T], what: str) -> T:
    assert len(items) == 1, f"expected one {what}, found {items}"
    return items[0]


def _referenced(result: Run, type_: str, ref: Any) -> RecordedResource:
    """The one resource of ``type_`` that ``ref`` (an id, ARN or name some input holds) points at."""
    return _one([r for r in result.of_type(type_) if ref in r.refs()], f"{type_} referenced by {ref!r}")


def _pointing_at(result: Run, type_: str, key: str, target: RecordedResource) -> list[RecordedResource]:
    return [r for r in result.of_type(type_) if r.inputs.get(key) in target.refs()]


def _aws_region(result: Run, resource: RecordedResource) -> str:
    """The region a resource is created in: its explicit provider's."""
    provider = Run.provider_name(resource)
    assert provider is not None, f"{resource.name} has no explicit provider"
    region: str = result.named("pulumi:providers:aws", provider).inputs["region"]
    return region


def _grants(document: str) -> dict[str, set[str]]:
    """Action -> every resource an Allow statement grants it on (unconditional or not)."""
    granted: dict[str, set[str]] = {}
    for statement in json.loads(document)["Statement"]:
        assert statement["Effect"] == "Allow", statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            granted.setdefault(action, set()).update(resources)
    return granted


def _statements_granting(document: str, action: str) -> list[dict[str, Any]]:
    return [s for s in json.loads(document)["Statement"] if action in s["Action"]]


def _in(cidr: str, network: str) -> bool:
    return ipaddress.IPv4Network(cidr).subnet_of(ipaddress.IPv4Network(network))


@dataclass(frozen=True)
class Buckets:
    """The backup bucket pair, found from the exports the runbooks read."""

    source: RecordedResource
    replica: RecordedResource


def _buckets(result: Run) -> Buckets:
    by_name = {b.outputs["bucket"]: b for b in result.of_type(BUCKET)}
    return Buckets(by_name[result.exports["backup_bucket"]], by_name[result.exports["backup_replica_bucket"]])


def _for_bucket(result: Run, type_: str, bucket: RecordedResource) -> RecordedResource:
    return _one(_pointing_at(result, type_, "bucket", bucket), f"{type_} of {bucket.name}")


def _sse_key(result: Run, bucket: RecordedResource) -> RecordedResource:
    sse = _for_bucket(result, SSE, bucket).inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    return _referenced(result, KMS_KEY, sse["kmsMasterKeyId"])


def _orchestrator_policy(result: Run) -> str:
    """The managed policy attached to the role the stack exports as the orchestrator's."""
    role = _referenced(result, ROLE, result.exports["orchestrator_role_arn"])
    attachment = _one(_pointing_at(result, ATTACHMENT, "role", role), "orchestrator policy attachment")
    document: str = _referenced(result, POLICY, attachment.inputs["policyArn"]).inputs["policy"]
    return document


def _config(stack: str) -> StackConfig:
    return checked_in(stack)


# --- backups: S3 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_backups_replicate_from_the_primary_region_into_the_recovery_region_replica(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.aws is not None
    buckets = _buckets(result)
    assert _aws_region(result, buckets.source) == result.exports["backup_bucket_region"] == config.aws.region
    assert _aws_region(result, buckets.replica) == result.exports["backup_replica_region"]
    assert result.exports["backup_replica_region"] == config.aws.recovery_region != config.aws.region

    replication = _one(result.of_type(REPLICATION), "replication configuration")
    assert replication.inputs["bucket"] in buckets.source.refs()
    (rule,) = replication.inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == {"prefix": ""}, "every object, not a prefix"
    assert rule["destination"]["bucket"] == buckets.replica.outputs["arn"]
    # The role S3 assumes is the one the replication policy is attached to.
    role = _referenced(result, ROLE, replication.inputs["role"])
    assert _pointing_at(result, ROLE_POLICY, "role", role)


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_kms_objects_replicate_and_are_re_encrypted_with_the_replicas_own_key(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    buckets = _buckets(result)
    (rule,) = _one(result.of_type(REPLICATION), "replication configuration").inputs["rules"]
    if config.storage.aws_encryption != "aws:kms":
        assert result.of_type(KMS_KEY) == []
        assert "encryptionConfiguration" not in rule["destination"]
        return
    replica_key = _sse_key(result, buckets.replica)
    assert rule["destination"]["encryptionConfiguration"] == {"replicaKmsKeyId": replica_key.outputs["arn"]}
    # Without this S3 silently skips every SSE-KMS object, that is every backup.
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_each_bucket_is_encrypted_with_a_rotating_key_of_its_own_region(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    buckets = (_buckets(result).source, _buckets(result).replica)
    keys = []
    for bucket in buckets:
        sse = _for_bucket(result, SSE, bucket).inputs["rules"][0]
        assert sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == config.storage.aws_encryption
        if config.storage.aws_encryption != "aws:kms":
            assert "kmsMasterKeyId" not in sse["applyServerSideEncryptionByDefault"]
            continue
        key = _sse_key(result, bucket)
        assert _aws_region(result, key) == _aws_region(result, bucket), f"{bucket.name}'s key is in another region"
        assert key.inputs["enableKeyRotation"] is True
        assert sse["bucketKeyEnabled"] is True
        keys.append(key.name)
    assert len(set(keys)) == len(keys), "the buckets share a key"


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_both_buckets_stay_versioned_and_private(stack: str) -> None:
    result = run_stack(stack)
    for bucket in (_buckets(result).source, _buckets(result).replica):
        assert _for_bucket(result, VERSIONING, bucket).inputs["versioningConfiguration"]["status"] == "Enabled"
        block = _for_bucket(result, PUBLIC_ACCESS_BLOCK, bucket).inputs
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        assert {f: block[f] for f in flags} == dict.fromkeys(flags, True)


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_replication_role_may_do_exactly_what_s3_replication_needs(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    buckets = _buckets(result)
    source, replica = buckets.source.outputs["arn"], buckets.replica.outputs["arn"]
    role = _referenced(result, ROLE, _one(result.of_type(REPLICATION), "replication").inputs["role"])
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    policy = _one(_pointing_at(result, ROLE_POLICY, "role", role), "replication role policy")
    expected = {
        "s3:GetReplicationConfiguration": {source},
        "s3:ListBucket": {source},
        "s3:GetObjectVersionForReplication": {f"{source}/*"},
        "s3:GetObjectVersionAcl": {f"{source}/*"},
        "s3:GetObjectVersionTagging": {f"{source}/*"},
        # Needed to carry Object Lock retention and legal holds over to the replica.
        "s3:GetObjectRetention": {f"{source}/*"},
        "s3:GetObjectLegalHold": {f"{source}/*"},
        "s3:ReplicateObject": {f"{replica}/*"},
        "s3:ReplicateDelete": {f"{replica}/*"},
        "s3:ReplicateTags": {f"{replica}/*"},
    }
    if config.storage.aws_encryption == "aws:kms":
        source_key = _sse_key(result, buckets.source).outputs["arn"]
        replica_key = _sse_key(result, buckets.replica).outputs["arn"]
        expected |= {
            "kms:Decrypt": {source_key},
            "kms:Encrypt": {replica_key},
            "kms:GenerateDataKey": {replica_key},
        }
    assert _grants(policy.inputs["policy"]) == expected


# --- dependencies the engine must respect -------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """What the engine was told about one resource's dependencies (URNs)."""

    dependencies: frozenset[str]
    through_inputs: frozenset[str]

    @property
    def explicit(self) -> set[tuple[str, str]]:
        """``depends_on`` as (type, name): the dependencies no input carries."""
        return {_type_and_name(urn) for urn in self.dependencies - self.through_inputs}


def _type_and_name(urn: str) -> tuple[str, str]:
    qualified_type, name = urn.split("::")[-2:]
    return qualified_type.rsplit("$", 1)[-1], name


@pytest.fixture(scope="module")
def registrations() -> tuple[Run, dict[tuple[str, str], Registration]]:
    """Storage on both clouds, with the dependencies of every registration recorded from the mock monitor.

    The harness's recorded resources carry inputs only; ``depends_on`` reaches the engine solely as the
    registration request's dependency URNs, so the monitor's handler is wrapped for this one run.
    """
    seen: dict[tuple[str, str], Registration] = {}
    # The SDK's mock monitor is unannotated; the variable's type lets strict mypy call it.
    original: Callable[[Any, Any], Any] = pulumi.runtime.mocks.MockMonitor.RegisterResource

    def recording(self: pulumi.runtime.mocks.MockMonitor, request: Any) -> Any:
        through_inputs = {urn for deps in request.propertyDependencies.values() for urn in deps.urns}
        seen[(request.type, request.name)] = Registration(frozenset(request.dependencies), frozenset(through_inputs))
        return original(self, request)

    def program() -> None:
        providers = aws_pair()
        ReplicatedBackupStorage(
            "vault",
            ReplicatedBackupStorageArgs(
                name_prefix="drctl-test",
                settings=StorageConfig(aws_encryption="aws:kms", object_lock_days=30),
                tags=TAGS,
                aws=AwsStorageArgs(providers.primary, providers.recovery),
                azure=azure_target(),
            ),
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pulumi.runtime.mocks.MockMonitor, "RegisterResource", recording)
        result = run(program)
    return result, seen


def test_replication_is_configured_only_once_both_buckets_are_versioned(
    registrations: tuple[Run, dict[tuple[str, str], Registration]],
) -> None:
    result, seen = registrations
    replication = _one(result.of_type(REPLICATION), "replication")
    waits_for = seen[(REPLICATION, replication.name)].explicit
    for bucket in result.of_type(BUCKET):
        versioning = _for_bucket(result, VERSIONING, bucket)
        # S3 rejects a replication configuration while either side is unversioned; only depends_on orders them.
        assert (VERSIONING, versioning.name) in waits_for, f"replication does not wait for {bucket.name} versioning"


def test_object_lock_and_the_vault_container_wait_for_what_protects_them(
    registrations: tuple[Run, dict[tuple[str, str], Registration]],
) -> None:
    result, seen = registrations
    for bucket in result.of_type(BUCKET):
        lock = _for_bucket(result, OBJECT_LOCK, bucket)
        versioning = _for_bucket(result, VERSIONING, bucket)
        assert (VERSIONING, versioning.name) in seen[(OBJECT_LOCK, lock.name)].explicit
    container = _one(result.of_type(CONTAINER), "container")
    service = _one(result.of_type(BLOB_SERVICE), "blob service")
    # Blobs written before versioning and soft delete are on would have neither.
    assert (BLOB_SERVICE, service.name) in seen[(CONTAINER, container.name)].explicit


# --- backups: Azure vault ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", [s for s in STACK_NAMES if s != "lab"])
def test_azure_vault_is_geo_redundant_private_and_exported(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.azure is not None
    account = _referenced(result, ACCOUNT, result.exports["vault_account"])
    assert account.inputs["sku"] == {"name": config.storage.azure_sku}
    assert account.inputs["sku"]["name"] != "Standard_LRS"
    container = _one(result.of_type(CONTAINER), "vault container")
    assert container.inputs["accountName"] in account.refs()
    assert container.inputs["publicAccess"] == "None"
    assert container.inputs["containerName"] == result.exports["vault_container"]
    service = _one(result.of_type(BLOB_SERVICE), "blob service")
    assert service.inputs["accountName"] in account.refs()
    assert service.inputs["isVersioningEnabled"] is True


# --- DNS ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ROUTE53)
def test_route53_primary_record_is_production_and_carries_its_health_check(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.dns.provider == "route53"
    check = _referenced(result, HEALTH_CHECK, result.exports["health_check_id"])
    probed = check.inputs.get("ipAddress") or check.inputs.get("fqdn")
    assert probed == config.dns.primary_endpoint, "the health check must watch production"
    failover = {
        r.inputs["failoverRoutingPolicies"][0]["type"]: r.inputs
        for r in result.of_type(RECORD)
        if r.inputs.get("failoverRoutingPolicies")
    }
    assert set(failover) == {"PRIMARY", "SECONDARY"}
    primary, secondary = failover["PRIMARY"], failover["SECONDARY"]
    assert primary["records"] == [config.dns.primary_endpoint]
    assert primary["healthCheckId"] == check.id
    assert secondary["records"] == [config.dns.recovery_endpoint]
    assert not secondary.get("healthCheckId"), "SECONDARY is the fallback; it answers whatever its health"
    for record in (primary, secondary):
        assert record["zoneId"] == result.exports["dns_zone_id"]
        assert record["name"] == result.exports["production_record_name"]


@pytest.mark.parametrize("stack", [s for s in STACK_NAMES if s not in ROUTE53])
def test_traffic_manager_prefers_production_and_falls_back_to_recovery(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.dns.provider == "traffic_manager"
    profile = _referenced(result, TRAFFIC_MANAGER, result.exports["dns_zone_id"])
    assert profile.inputs["trafficRoutingMethod"] == "Priority"
    by_priority = [e["target"] for e in sorted(profile.inputs["endpoints"], key=lambda e: e["priority"])]
    assert by_priority == [config.dns.primary_endpoint, config.dns.recovery_endpoint]
    assert profile.inputs["monitorConfig"]["path"] == config.dns.health_check_path


@pytest.mark.parametrize("stack", AWS_RECOVERY)
def test_aws_drill_record_resolves_only_inside_the_drill_vpc(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.recovery_cloud == "aws"
    assert config.aws is not None
    zone = _referenced(result, ZONE, result.exports["drill_dns_zone_id"])
    assert zone.inputs["name"] == config.dns.drill_zone_name
    assert zone.inputs["vpcs"] == [
        {"vpcId": result.exports["drill_network_id"], "vpcRegion": config.aws.recovery_region}
    ]
    record = _one([r for r in result.of_type(RECORD) if r.inputs["zoneId"] == zone.outputs["zoneId"]], "drill record")
    assert record.inputs["records"] == [config.dns.drill_endpoint]
    assert ipaddress.ip_address(config.dns.drill_endpoint) in ipaddress.ip_network(config.network.drill_cidr)


@pytest.mark.parametrize("stack", AZURE_RECOVERY)
def test_azure_drill_zone_is_linked_to_the_drill_vnet_only(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.recovery_cloud == "azure"
    zone = _referenced(result, PRIVATE_ZONE, result.exports["drill_dns_zone_id"])
    links = [link for link in result.of_type(ZONE_LINK) if link.inputs["privateZoneName"] in zone.refs()]
    assert [link.inputs["virtualNetwork"] for link in links] == [{"id": result.exports["drill_network_id"]}]
    record = _one(result.of_type(PRIVATE_RECORD), "drill record")
    assert record.inputs["aRecords"] == [{"ipv4Address": config.dns.drill_endpoint}]


# --- networks ---------------------------------------------------------------------------------------------------


def _subnets_of(result: Run, vpc_id: str) -> dict[str, RecordedResource]:
    return {s.id: s for s in result.of_type(SUBNET) if s.id and s.inputs["vpcId"] == vpc_id}


@pytest.mark.parametrize("stack", AWS_RECOVERY)
def test_aws_subnets_lie_inside_their_own_vpc_and_the_exports_name_them(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    recovery = _referenced(result, VPC, result.exports["recovery_network_id"])
    drill = _referenced(result, VPC, result.exports["drill_network_id"])
    assert recovery.inputs["cidrBlock"] == config.network.recovery_cidr
    assert drill.inputs["cidrBlock"] == config.network.drill_cidr
    for vpc in (recovery, drill):
        for subnet in _subnets_of(result, str(vpc.id)).values():
            assert _in(subnet.inputs["cidrBlock"], vpc.inputs["cidrBlock"]), f"{subnet.name} outside {vpc.name}"
            assert _aws_region(result, subnet) == config.recovery_region
    exported_recovery = set(result.exports["recovery_subnet_ids"]) | set(result.exports["recovery_public_subnet_ids"])
    assert exported_recovery == set(_subnets_of(result, str(recovery.id)))
    assert set(result.exports["drill_subnet_ids"]) == set(_subnets_of(result, str(drill.id)))
    assert set(result.exports["recovery_subnet_ids"]).isdisjoint(result.exports["recovery_public_subnet_ids"])
    assert len(result.exports["recovery_subnet_ids"]) == config.network.az_count


@pytest.mark.parametrize("stack", AWS_RECOVERY)
def test_only_public_recovery_subnets_have_a_route_out(stack: str) -> None:
    result = run_stack(stack)
    tables = {t.id: t for t in result.of_type(ROUTE_TABLE)}
    table_of: dict[str, list[RecordedResource]] = {}
    for association in result.of_type(ASSOCIATION):
        table_of.setdefault(association.inputs["subnetId"], []).append(tables[association.inputs["routeTableId"]])
    routed_out = {
        subnet.id
        for subnet in result.of_type(SUBNET)
        for table in table_of.get(str(subnet.id), [])
        if any(route.get(k) for route in table.inputs.get("routes") or [] for k in ROUTE_EXITS)
    }
    assert all(len(t) == 1 for t in table_of.values()), "a subnet has one route table"
    assert set(table_of) == {s.id for s in result.of_type(SUBNET)}
    assert routed_out == set(result.exports["recovery_public_subnet_ids"])


def _tier_rules(result: Run, group_id: str) -> list[Mapping[str, Any]]:
    return [r.inputs for r in result.of_type(INGRESS) if r.inputs["securityGroupId"] == group_id]


@pytest.mark.parametrize("stack", AWS_RECOVERY)
@pytest.mark.parametrize("segment", ["recovery", "drill"])
def test_aws_tier_ingress_chains_from_the_upstream_tier_on_the_tier_port_only(stack: str, segment: str) -> None:
    result, config = run_stack(stack), _config(stack)
    prefix = "" if segment == "recovery" else "drill_"
    groups: Mapping[str, str] = result.exports[f"{prefix}security_group_ids"]
    vpc_id = result.exports[f"{segment}_network_id"]
    # Drill copies of internet-facing tiers are reachable only from inside the drill network.
    internet = ANYWHERE if segment == "recovery" else config.network.drill_cidr
    assert set(groups) == set(config.tier_names)
    for tier in config.tiers:
        group = _referenced(result, SECURITY_GROUP, groups[tier.name])
        assert group.inputs["vpcId"] == vpc_id
        rules = _tier_rules(result, groups[tier.name])
        traffic = [r for r in rules if r["fromPort"] != tier.admin_port]
        admin = [r for r in rules if r["fromPort"] == tier.admin_port]
        assert len(traffic) == 1, f"{segment} {tier.name}: {traffic}"
        (rule,) = traffic
        assert (rule["ipProtocol"], rule["fromPort"], rule["toPort"]) == ("tcp", tier.port, tier.port)
        if tier.ingress_from == "internet":
            assert rule.get("cidrIpv4") == internet
            assert "referencedSecurityGroupId" not in rule
        else:
            assert rule.get("referencedSecurityGroupId") == groups[tier.ingress_from]
            assert "cidrIpv4" not in rule, f"{tier.name} takes traffic from addresses, not only {tier.ingress_from}"
        assert sorted(r["cidrIpv4"] for r in admin) == sorted(config.network.admin_cidrs)
        assert all(r["toPort"] == tier.admin_port for r in admin)


def _azure_subnet(result: Run, subnet_id: str) -> RecordedResource:
    return _one([s for s in result.of_type(VNET_SUBNET) if s.id == subnet_id], f"subnet {subnet_id}")


@pytest.mark.parametrize("stack", AZURE_RECOVERY)
@pytest.mark.parametrize("segment", ["recovery", "drill"])
def test_azure_internal_tiers_take_traffic_only_from_the_private_subnet(stack: str, segment: str) -> None:
    result, config = run_stack(stack), _config(stack)
    prefix = "" if segment == "recovery" else "drill_"
    groups: Mapping[str, str] = result.exports[f"{prefix}security_group_ids"]
    (private_id,) = result.exports[f"{prefix}subnet_ids" if prefix else "recovery_subnet_ids"]
    private = _azure_subnet(result, private_id)
    assert private.inputs["defaultOutboundAccess"] is (segment == "recovery")
    internet = "Internet" if segment == "recovery" else config.network.drill_cidr
    for tier in config.tiers:
        nsg = _referenced(result, NSG, groups[tier.name])
        assert nsg.inputs["location"] == config.recovery_region
        (traffic,) = [r for r in nsg.inputs["securityRules"] if r["destinationPortRange"] == str(tier.port)]
        expected = internet if tier.ingress_from == "internet" else private.inputs["addressPrefix"]
        assert traffic["sourceAddressPrefix"] == expected, f"{segment} {tier.name}"
        assert (traffic["access"], traffic["direction"]) == ("Allow", "Inbound")


# --- standby compute, images and the identity that drives them -----------------------------------------------------


def _ec2_lifecycle_statement(result: Run) -> dict[str, Any]:
    return _one(_statements_granting(_orchestrator_policy(result), "ec2:StartInstances"), "ec2:StartInstances grant")


@pytest.mark.parametrize("stack", ["lab"])
def test_standby_instances_sit_in_recovery_private_subnets_behind_their_tiers_group(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.compute.aws_mode == "stopped_instances"
    instances = result.of_type(INSTANCE)
    assert len(instances) == sum(t.count for t in config.tiers)
    exported = result.exports["standby_instance_ids"]
    states = {s.inputs["instanceId"]: s.inputs["state"] for s in result.of_type(INSTANCE_STATE)}
    # Standing by means stopped: a running standby bills around the clock.
    assert states == {i.id: "stopped" for i in instances}
    for instance in instances:
        tier = instance.inputs["tags"]["drctl:tier"]
        assert instance.id in exported[tier]
        assert instance.inputs["subnetId"] in result.exports["recovery_subnet_ids"]
        assert instance.inputs["vpcSecurityGroupIds"] == [result.exports["security_group_ids"][tier]]
        assert instance.inputs["ami"] == result.exports["image_ids"][tier]
        assert _aws_region(result, instance) == config.recovery_region


@pytest.mark.parametrize("stack", ["azure-to-aws"])
def test_launch_templates_use_the_recovery_groups_and_images(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.compute.aws_mode == "launch_templates"
    templates = result.exports["standby_template_ids"]
    assert set(templates) == set(config.tier_names)
    for tier, template_id in templates.items():
        template = _referenced(result, TEMPLATE, template_id)
        assert template.inputs["vpcSecurityGroupIds"] == [result.exports["security_group_ids"][tier]]
        assert template.inputs["imageId"] == result.exports["image_ids"][tier]
        assert _aws_region(result, template) == config.recovery_region


@pytest.mark.parametrize("stack", AWS_RECOVERY)
def test_standbys_carry_the_stack_tag_the_orchestrators_ec2_grant_requires(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.aws is not None
    lifecycle = _ec2_lifecycle_statement(result)
    condition = lifecycle.get("Condition") or {}
    # Without the condition the orchestrator could stop or terminate any instance, production included.
    assert condition == {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": stack}}
    resources = lifecycle["Resource"] if isinstance(lifecycle["Resource"], list) else [lifecycle["Resource"]]
    assert resources
    assert all(r.startswith(f"arn:aws:ec2:{config.aws.recovery_region}:") for r in resources), resources
    labels = [i.inputs["tags"] for i in result.of_type(INSTANCE)]
    labels += [
        spec["tags"]
        for t in result.of_type(TEMPLATE)
        for spec in t.inputs["tagSpecifications"]
        if spec["resourceType"] == "instance"
    ]
    assert len(labels) >= len(config.tiers)
    assert {label.get(STACK_TAG) for label in labels} == {stack}


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_orchestrator_reaches_both_backup_buckets_and_their_keys(stack: str) -> None:
    result = run_stack(stack)
    buckets = _buckets(result)
    arns = {buckets.source.outputs["arn"], buckets.replica.outputs["arn"]}
    granted = _grants(_orchestrator_policy(result))
    # After losing the primary region the replica is the only copy the runbooks can restore from.
    assert granted["s3:GetObject"] == {f"{arn}/*" for arn in arns}
    assert granted["s3:ListBucket"] == arns
    keys = {k.outputs["arn"] for k in result.of_type(KMS_KEY)}
    if keys:
        assert granted["kms:Decrypt"] == keys


@pytest.mark.parametrize("stack", AWS_RECOVERY)
def test_ami_copies_land_in_the_recovery_region(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.aws is not None
    copies = {c.inputs["tags"]["drctl:tier"]: c for c in result.of_type(AMI_COPY)}
    assert set(copies) == set(config.tier_names)
    for tier, copy in copies.items():
        assert _aws_region(result, copy) == config.aws.recovery_region
        assert copy.inputs["sourceAmiRegion"] == (config.images.aws_source_region or config.aws.region)
        assert copy.inputs["sourceAmiId"] == config.images.aws_source_amis[tier]
        assert copy.inputs["encrypted"] is True
        assert result.exports["image_ids"][tier] == copy.id


@pytest.mark.parametrize("stack", AZURE_RECOVERY)
def test_azure_images_and_standby_vms_are_in_the_recovery_location(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert config.azure is not None
    recovery = config.azure.recovery_location
    assert recovery != config.azure.location
    for version in result.of_type(IMAGE_VERSION):
        regions = [r["name"] for r in version.inputs["publishingProfile"]["targetRegions"]]
        assert recovery in regions, f"{version.name} is never replicated to {recovery}"
        assert result.exports["image_ids"][version.inputs["galleryImageName"]] == version.id
    vms = result.of_type(VM)
    assert len(vms) == sum(t.count for t in config.tiers)
    nics = {n.id: n for n in result.of_type(NIC)}
    (private,) = result.exports["recovery_subnet_ids"]
    for vm in vms:
        tier = vm.inputs["tags"]["drctl:tier"]
        assert vm.inputs["location"] == recovery
        assert vm.inputs["storageProfile"]["imageReference"] == {"id": result.exports["image_ids"][tier]}
        (reference,) = vm.inputs["networkProfile"]["networkInterfaces"]
        nic = nics[reference["id"]]
        assert nic.inputs["location"] == recovery
        assert [c["subnet"]["id"] for c in nic.inputs["ipConfigurations"]] == [private]
        assert nic.inputs["networkSecurityGroup"] == {"id": result.exports["security_group_ids"][tier]}


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_exports_follow_the_configured_tier_order(stack: str) -> None:
    result, config = run_stack(stack), _config(stack)
    assert result.exports["standby_tier_order"] == list(config.tier_names)
