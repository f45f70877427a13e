"""The policy pack's policies over the mocks: the checked-in stacks comply, and every kind of violation is caught.

``violations`` runs the very policies `pulumi preview --policy-pack stacks/policy_pack` runs (see
``stacks.policy.adapter``); the unit tests of each policy are in ``test_policy_pack.py``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from stacks.policy import CHECKS, RecordedResource, violations
from tests.stacks.pulumi_harness import ROOT, STACK_NAMES, run, run_stack

Resources = tuple[RecordedResource, ...]
Mutation = Callable[[Resources], Resources]


PACK_CONFIGS = ROOT / "stacks" / "policy_pack" / "config"


def _pack_config(stack: str) -> dict[str, Any] | None:
    """The `--policy-pack-config` file a stack is previewed with, if it needs one."""
    path = PACK_CONFIGS / f"{stack}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_checked_in_stacks_pass_every_policy(stack: str) -> None:
    assert violations(run_stack(stack).resources, _pack_config(stack)) == {}


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_a_stack_pack_config_disables_only_what_the_stack_would_fail(stack: str) -> None:
    config = _pack_config(stack) or {}
    disabled = {name for name, level in config.items() if level == "disabled"}
    assert set(violations(run_stack(stack).resources)) == disabled


def test_the_lab_leaves_its_backups_unprotected_on_purpose() -> None:
    # LocalStack is rebuilt at will, so the lab turns protection off (drctl:protection) and its pack config
    # turns the protection policy off with it.
    assert set(violations(run_stack("lab").resources)) == {"backup-protection"}


# --- mutations of a compliant stack, each introducing one kind of violation ----------------------


def _edit(type_: str, pick: Callable[[RecordedResource], bool], change: Callable[[dict[str, Any]], None]) -> Mutation:
    """Apply ``change`` to the inputs (and the outputs, which echo them) of the first matching resource.

    An edited input is a literal now, so the engine would record no dependency for it: its property
    dependencies go, and policies must find what it names by value.
    """

    def mutate(resources: Resources) -> Resources:
        out, done = [], False
        for r in resources:
            if not done and r.type == type_ and pick(r):
                inputs, outputs = json.loads(json.dumps(r.inputs)), json.loads(json.dumps(r.outputs))
                change(inputs)
                change(outputs)
                changed = {k for k in {*inputs, *r.inputs} if inputs.get(k) != r.inputs.get(k)}
                deps = {k: v for k, v in r.property_dependencies.items() if k not in changed}
                r = dataclasses.replace(r, inputs=inputs, outputs=outputs, property_dependencies=deps)
                done = True
            out.append(r)
        assert done, f"no {type_} to mutate"
        return tuple(out)

    return mutate


def _unprotect(type_: str) -> Mutation:
    def mutate(resources: Resources) -> Resources:
        first = next(r for r in resources if r.type == type_)
        assert first.protect, f"{type_} {first.name} was not protected to begin with"
        return tuple(dataclasses.replace(r, protect=False) if r is first else r for r in resources)

    return mutate


def _drop(type_: str) -> Mutation:
    def mutate(resources: Resources) -> Resources:
        first = next(r for r in resources if r.type == type_)
        return tuple(r for r in resources if r is not first)

    return mutate


def _add(type_: str, name: str, inputs: Callable[[Resources], dict[str, Any]]) -> Mutation:
    def mutate(resources: Resources) -> Resources:
        made = inputs(resources)
        return (*resources, RecordedResource(type_, name, made, dict(made), f"{name}-id"))

    return mutate


def _drill_vpc_id(resources: Resources) -> str | None:
    return next(r.id for r in resources if r.type == "aws:ec2/vpc:Vpc" and r.role == "drill")


def _drill_vnet(resources: Resources) -> RecordedResource:
    return next(r for r in resources if r.type == "azure-native:network:VirtualNetwork" and r.role == "drill")


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda inputs: inputs.__setitem__(key, value)


def _replication_policy(resource: str, action: str = "s3:ReplicateObject") -> Callable[[dict[str, Any]], None]:
    statement = {"Effect": "Allow", "Action": [action], "Resource": [resource]}

    def change(inputs: dict[str, Any]) -> None:
        document = json.loads(inputs["policy"])
        document["Statement"].append(statement)
        inputs["policy"] = json.dumps(document)

    return change


def _statement(statement: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(inputs: dict[str, Any]) -> None:
        document = json.loads(inputs["policy"])
        document["Statement"].append(statement)
        inputs["policy"] = json.dumps(document)

    return change


def _primary_bucket(resources: Resources) -> str:
    return next(r.inputs.get("bucket") or r.id or "" for r in resources if r.type == S3_BUCKET)


ANY = lambda r: True  # noqa: E731 -- reads better inline in the table below
S3_BUCKET = "aws:s3/bucket:Bucket"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
NSG = "azure-native:network:NetworkSecurityGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
ACCOUNT = "azure-native:storage:StorageAccount"

# (stack, the policies the mutation must fail, what it does, the mutation)
VIOLATIONS: list[tuple[str, frozenset[str], str, Mutation]] = [
    (
        "lab",
        frozenset({"backup-versioning"}),
        "bucket without a versioning resource",
        _drop("aws:s3/bucketVersioning:BucketVersioning"),
    ),
    (
        "lab",
        frozenset({"backup-versioning"}),
        "bucket with versioning suspended",
        _edit(
            "aws:s3/bucketVersioning:BucketVersioning", ANY, _set("versioningConfiguration", {"status": "Suspended"})
        ),
    ),
    (
        "aws-to-azure",
        frozenset({"backup-versioning"}),
        "storage account without blob versioning",
        _edit("azure-native:storage:BlobServiceProperties", ANY, _set("isVersioningEnabled", False)),
    ),
    (
        "lab",
        frozenset({"backup-encryption"}),
        "bucket without default encryption",
        _drop("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"),
    ),
    (
        "aws-to-azure",
        frozenset({"backup-encryption"}),
        "storage account without encryption settings",
        _edit(ACCOUNT, ANY, lambda i: i.pop("encryption")),
    ),
    (
        "azure-to-aws",
        frozenset({"backup-encryption"}),
        "storage account accepting plain HTTP",
        _edit(ACCOUNT, ANY, _set("enableHttpsTrafficOnly", False)),
    ),
    (
        "lab",
        frozenset({"no-public-access"}),
        "public access block with one setting off",
        _edit("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", ANY, _set("restrictPublicBuckets", False)),
    ),
    (
        "lab",
        frozenset({"no-public-access"}),
        "bucket with a public ACL",
        _edit(S3_BUCKET, ANY, _set("acl", "public-read")),
    ),
    (
        "lab",
        frozenset({"no-public-access"}),
        "a public ACL resource on a bucket",
        _add("aws:s3/bucketAcl:BucketAcl", "open", lambda rs: {"bucket": _primary_bucket(rs), "acl": "public-read"}),
    ),
    (
        "aws-to-azure",
        frozenset({"no-public-access"}),
        "storage account allowing public blobs",
        _edit(ACCOUNT, ANY, _set("allowBlobPublicAccess", True)),
    ),
    (
        "aws-to-azure",
        frozenset({"no-public-access"}),
        "public container",
        _edit("azure-native:storage:BlobContainer", ANY, _set("publicAccess", "Blob")),
    ),
    (
        "lab",
        frozenset({"least-privilege"}),
        "SSH open to 0.0.0.0/0",
        _edit(SG_INGRESS, lambda r: r.inputs.get("fromPort") == 22, _set("cidrIpv4", "0.0.0.0/0")),
    ),
    (
        "lab",
        frozenset({"least-privilege"}),
        "all traffic from ::/0",
        _add(
            SG_INGRESS,
            "everything",
            lambda _: {"securityGroupId": "sg", "ipProtocol": "-1", "cidrIpv6": "::/0"},
        ),
    ),
    (
        "lab",
        frozenset({"least-privilege"}),
        "inline security group rule covering 22",
        _add(
            "aws:ec2/securityGroup:SecurityGroup",
            "legacy",
            lambda _: {"ingress": [{"protocol": "tcp", "fromPort": 0, "toPort": 1024, "cidrBlocks": ["0.0.0.0/0"]}]},
        ),
    ),
    (
        "aws-to-azure",
        frozenset({"least-privilege"}),
        "RDP open to the Internet tag",
        _edit(
            NSG,
            ANY,
            lambda i: i["securityRules"].append(
                {
                    "name": "rdp",
                    "direction": "Inbound",
                    "access": "Allow",
                    "protocol": "Tcp",
                    "sourceAddressPrefix": "Internet",
                    "destinationPortRange": "3389",
                }
            ),
        ),
    ),
    (
        "aws-to-azure",
        frozenset({"least-privilege"}),
        "standalone rule allowing any port from anywhere",
        _add(
            "azure-native:network:SecurityRule",
            "any",
            lambda _: {
                "direction": "Inbound",
                "access": "Allow",
                "sourceAddressPrefix": "*",
                "destinationPortRange": "*",
            },
        ),
    ),
    (
        "lab",
        frozenset({"least-privilege"}),
        "orchestrator policy with a wildcard action",
        _edit(IAM_POLICY, ANY, _statement({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::x"})),
    ),
    (
        "azure-to-aws",
        frozenset({"least-privilege"}),
        "orchestrator policy granting a scopable action on Resource *",
        _edit(IAM_POLICY, ANY, _statement({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"})),
    ),
    (
        "aws-to-azure",
        frozenset({"least-privilege"}),
        "orchestrator policy allowing everything but one action",
        _edit(IAM_POLICY, ANY, _statement({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::x"})),
    ),
    (
        "lab",
        frozenset({"replication-wiring", "least-privilege"}),
        "replication role granted Resource *",
        _edit(ROLE_POLICY, ANY, _replication_policy("*")),
    ),
    (
        "lab",
        frozenset({"replication-wiring"}),
        "replication role granted every bucket",
        _edit(ROLE_POLICY, ANY, _replication_policy("arn:aws:s3:::*")),
    ),
    (
        "azure-to-aws",
        frozenset({"replication-wiring", "least-privilege"}),
        "replication role granted s3:*",
        _edit(
            ROLE_POLICY,
            ANY,
            lambda i: _replication_policy(json.loads(i["policy"])["Statement"][0]["Resource"][0], "s3:*")(i),
        ),
    ),
    (
        "lab",
        frozenset({"replication-wiring"}),
        "buckets with no replication between them",
        _drop(REPLICATION),
    ),
    (
        "aws-to-azure",
        frozenset({"replication-wiring"}),
        "replication rule disabled",
        _edit(REPLICATION, ANY, lambda i: i["rules"][0].__setitem__("status", "Disabled")),
    ),
    (
        "lab",
        frozenset({"replication-wiring"}),
        "replication through a role S3 cannot assume",
        _edit(REPLICATION, ANY, _set("role", "arn:aws:iam::123456789012:role/someone-else")),
    ),
    (
        "azure-to-aws",
        frozenset({"replication-wiring"}),
        "vault storage account kept in one region",
        _edit(ACCOUNT, ANY, _set("sku", {"name": "Standard_LRS"})),
    ),
    (
        "lab",
        frozenset({"drill-isolation"}),
        "internet gateway in the drill VPC",
        _add("aws:ec2/internetGateway:InternetGateway", "leak", lambda rs: {"vpcId": _drill_vpc_id(rs)}),
    ),
    (
        "lab",
        frozenset({"drill-isolation"}),
        "drill VPC peered with production",
        _add(
            "aws:ec2/vpcPeeringConnection:VpcPeeringConnection",
            "leak",
            lambda rs: {"vpcId": "vpc-production", "peerVpcId": _drill_vpc_id(rs)},
        ),
    ),
    (
        "azure-to-aws",
        frozenset({"drill-isolation"}),
        "drill route table with a transit gateway route",
        _edit(
            "aws:ec2/routeTable:RouteTable",
            lambda r: r.role == "drill",
            _set("routes", [{"cidrBlock": "10.0.0.0/8", "transitGatewayId": "tgw-1"}]),
        ),
    ),
    (
        "lab",
        frozenset({"drill-isolation"}),
        "drill VPC attached to a transit gateway",
        _add("aws:ec2transitgateway/vpcAttachment:VpcAttachment", "leak", lambda rs: {"vpcId": _drill_vpc_id(rs)}),
    ),
    (
        "aws-to-azure",
        frozenset({"drill-isolation"}),
        "drill VNet peered with production",
        _add(
            "azure-native:network:VirtualNetworkPeering",
            "leak",
            lambda rs: {"virtualNetworkName": "production", "remoteVirtualNetwork": {"id": _drill_vnet(rs).id}},
        ),
    ),
    (
        "aws-to-azure",
        frozenset({"drill-isolation"}),
        "drill subnet with default outbound access",
        _edit(
            "azure-native:network:Subnet",
            lambda r: r.name.endswith("-drill"),
            _set("defaultOutboundAccess", True),
        ),
    ),
    (
        "lab",
        frozenset({"drill-isolation"}),
        "no drill network at all",
        lambda rs: tuple(r for r in rs if not (r.type == "aws:ec2/vpc:Vpc" and r.role == "drill")),
    ),
    ("aws-to-azure", frozenset({"backup-protection"}), "unprotected backup bucket", _unprotect(S3_BUCKET)),
    ("aws-to-azure", frozenset({"backup-protection"}), "unprotected KMS key", _unprotect("aws:kms/key:Key")),
    ("azure-to-aws", frozenset({"backup-protection"}), "unprotected vault storage account", _unprotect(ACCOUNT)),
]


@pytest.mark.parametrize(
    ("stack", "expected", "mutation"),
    [
        pytest.param(stack, expected, mutation, id=f"{'+'.join(sorted(expected))}: {what}")
        for stack, expected, what, mutation in VIOLATIONS
    ],
)
def test_each_violation_fails_exactly_its_policies(stack: str, expected: frozenset[str], mutation: Mutation) -> None:
    found = violations(mutation(run_stack(stack).resources), _pack_config(stack))
    assert set(found) == expected, found


def test_every_policy_has_a_violation_case() -> None:
    assert {name for _, expected, _, _ in VIOLATIONS for name in expected} == set(CHECKS)


# --- a deliberately non-compliant program, recorded by the same mocks ------------------------------------


def _careless_program() -> None:
    provider = aws.Provider("careless", region="us-east-1")
    opts = pulumi.ResourceOptions(provider=provider)
    bucket = aws.s3.Bucket("open-bucket", acl="public-read", opts=opts)
    aws.ec2.SecurityGroup(
        "ssh-anywhere",
        ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=22, to_port=22, cidr_blocks=["0.0.0.0/0"])],
        opts=opts,
    )
    role = aws.iam.Role(
        "replicator",
        assume_role_policy=json.dumps(
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ]
            }
        ),
        opts=opts,
    )
    aws.iam.RolePolicy(
        "replicator",
        role=role.id,
        policy=bucket.arn.apply(
            lambda arn: json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": [arn, "*"]}]})
        ),
        opts=opts,
    )
    vpc = aws.ec2.Vpc("drill", cidr_block="10.9.0.0/16", tags={"drctl:role": "drill"}, opts=opts)
    aws.ec2.InternetGateway("drill-exit", vpc_id=vpc.id, opts=opts)


def test_a_careless_program_fails_every_policy() -> None:
    found = violations(run(_careless_program).resources)
    assert set(found) == set(CHECKS)
    assert found["backup-versioning"] == ["S3 bucket open-bucket is not versioned"]
    assert found["least-privilege"] == [
        "security group ssh-anywhere opens SSH/RDP to the internet",
        "role policy replicator allows the wildcard action 's3:*'",
    ]
    assert "S3 bucket open-bucket has public ACL public-read" in found["no-public-access"]
    assert "S3 bucket open-bucket is neither replicated nor a replica" in found["replication-wiring"]
    assert any("grants '*'" in v for v in found["replication-wiring"])
    assert found["drill-isolation"] == ["drill VPC drill has an internet gateway (drill-exit)"]
    assert found["backup-protection"] == [
        "S3 bucket open-bucket is not protected: a destroy or a replacement would delete it"
    ]


def _only(name: str, resources: Sequence[RecordedResource]) -> list[str]:
    return CHECKS[name](resources)


def test_policies_pass_an_empty_stack_except_drill_isolation() -> None:
    assert {name: _only(name, []) for name in CHECKS if _only(name, [])} == {
        "drill-isolation": ["no drill network (a VPC or VNet tagged drctl:role=drill) is defined"]
    }


# --- what the harness records beyond inputs and outputs --------------------------------------------------


def _guarded_program() -> None:
    provider = aws.Provider("p", region="us-east-1")
    parent = pulumi.ComponentResource("drctl:test:Vault", "vault", None, pulumi.ResourceOptions(protect=True))
    bucket = aws.s3.Bucket("kept", opts=pulumi.ResourceOptions(provider=provider, parent=parent, retain_on_delete=True))
    key = aws.kms.Key("kept", opts=pulumi.ResourceOptions(provider=provider))
    aws.s3.BucketVersioning(
        "kept",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[key]),
    )


def test_the_harness_records_options_and_dependencies() -> None:
    result = run(_guarded_program)
    bucket = result.named(S3_BUCKET, "kept")
    versioning = result.named("aws:s3/bucketVersioning:BucketVersioning", "kept")
    (parent,) = result.of_type("drctl:test:Vault")
    key = result.named("aws:kms/key:Key", "kept")
    # protect comes down from the parent, as the engine would record it; retain_on_delete was set on the bucket.
    assert (bucket.protect, bucket.retain_on_delete, bucket.parent) == (True, True, parent.urn)
    assert (versioning.protect, versioning.retain_on_delete) == (False, False)
    assert versioning.property_dependencies["bucket"] == (bucket.urn,)
    assert set(versioning.dependencies) == {bucket.urn, key.urn}
    assert bucket.urn is not None
    assert bucket.urn in result.urns
