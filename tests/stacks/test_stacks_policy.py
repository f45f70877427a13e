"""Policy checks: the checked-in stacks comply, and every kind of violation is caught."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from stacks.policy import CHECKS, RecordedResource, violations
from tests.stacks.pulumi_harness import STACK_NAMES, run, run_stack

Resources = tuple[RecordedResource, ...]
Mutation = Callable[[Resources], Resources]


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_checked_in_stacks_pass_every_check(stack: str) -> None:
    assert violations(run_stack(stack).resources) == {}


# --- mutations of a compliant stack, each introducing exactly one kind of violation ----------------------


def _edit(type_: str, pick: Callable[[RecordedResource], bool], change: Callable[[dict[str, Any]], None]) -> Mutation:
    """Replace the inputs of the first matching resource with an edited copy."""

    def mutate(resources: Resources) -> Resources:
        out, done = [], False
        for r in resources:
            if not done and r.type == type_ and pick(r):
                inputs = json.loads(json.dumps(r.inputs))
                change(inputs)
                r, done = dataclasses.replace(r, inputs=inputs), True
            out.append(r)
        assert done, f"no {type_} to mutate"
        return tuple(out)

    return mutate


def _drop(type_: str) -> Mutation:
    def mutate(resources: Resources) -> Resources:
        first = next(r for r in resources if r.type == type_)
        return tuple(r for r in resources if r is not first)

    return mutate


def _add(type_: str, name: str, inputs: Callable[[Resources], dict[str, Any]]) -> Mutation:
    def mutate(resources: Resources) -> Resources:
        return (*resources, RecordedResource(type_, name, inputs(resources), {}, f"{name}-id"))

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


ANY = lambda r: True  # noqa: E731 -- reads better inline in the table below
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
NSG = "azure-native:network:NetworkSecurityGroup"

VIOLATIONS: list[tuple[str, str, str, Mutation]] = [
    ("lab", "versioning", "bucket without a versioning resource", _drop("aws:s3/bucketVersioning:BucketVersioning")),
    (
        "lab",
        "versioning",
        "bucket with versioning suspended",
        _edit(
            "aws:s3/bucketVersioning:BucketVersioning", ANY, _set("versioningConfiguration", {"status": "Suspended"})
        ),
    ),
    (
        "aws-to-azure",
        "versioning",
        "storage account without blob versioning",
        _edit("azure-native:storage:BlobServiceProperties", ANY, _set("isVersioningEnabled", False)),
    ),
    (
        "lab",
        "encryption",
        "bucket without default encryption",
        _drop("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"),
    ),
    (
        "aws-to-azure",
        "encryption",
        "storage account without encryption settings",
        _edit("azure-native:storage:StorageAccount", ANY, lambda i: i.pop("encryption")),
    ),
    (
        "azure-to-aws",
        "encryption",
        "storage account accepting plain HTTP",
        _edit("azure-native:storage:StorageAccount", ANY, _set("enableHttpsTrafficOnly", False)),
    ),
    (
        "lab",
        "public_access",
        "public access block with one setting off",
        _edit("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", ANY, _set("restrictPublicBuckets", False)),
    ),
    (
        "lab",
        "public_access",
        "bucket with a public ACL",
        _edit("aws:s3/bucket:Bucket", ANY, _set("acl", "public-read")),
    ),
    (
        "aws-to-azure",
        "public_access",
        "storage account allowing public blobs",
        _edit("azure-native:storage:StorageAccount", ANY, _set("allowBlobPublicAccess", True)),
    ),
    (
        "aws-to-azure",
        "public_access",
        "public container",
        _edit("azure-native:storage:BlobContainer", ANY, _set("publicAccess", "Blob")),
    ),
    (
        "lab",
        "admin_ports",
        "SSH open to 0.0.0.0/0",
        _edit(SG_INGRESS, lambda r: r.inputs.get("fromPort") == 22, _set("cidrIpv4", "0.0.0.0/0")),
    ),
    (
        "lab",
        "admin_ports",
        "all traffic from ::/0",
        _add(
            SG_INGRESS,
            "everything",
            lambda _: {"securityGroupId": "sg", "ipProtocol": "-1", "cidrIpv6": "::/0"},
        ),
    ),
    (
        "lab",
        "admin_ports",
        "inline security group rule covering 22",
        _add(
            "aws:ec2/securityGroup:SecurityGroup",
            "legacy",
            lambda _: {"ingress": [{"protocol": "tcp", "fromPort": 0, "toPort": 1024, "cidrBlocks": ["0.0.0.0/0"]}]},
        ),
    ),
    (
        "aws-to-azure",
        "admin_ports",
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
        "admin_ports",
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
        "replication_role",
        "replication role granted Resource *",
        _edit("aws:iam/rolePolicy:RolePolicy", ANY, _replication_policy("*")),
    ),
    (
        "lab",
        "replication_role",
        "replication role granted every bucket",
        _edit("aws:iam/rolePolicy:RolePolicy", ANY, _replication_policy("arn:aws:s3:::*")),
    ),
    (
        "azure-to-aws",
        "replication_role",
        "replication role granted s3:*",
        _edit(
            "aws:iam/rolePolicy:RolePolicy",
            ANY,
            lambda i: _replication_policy(json.loads(i["policy"])["Statement"][0]["Resource"][0], "s3:*")(i),
        ),
    ),
    (
        "lab",
        "drill_isolation",
        "internet gateway in the drill VPC",
        _add("aws:ec2/internetGateway:InternetGateway", "leak", lambda rs: {"vpcId": _drill_vpc_id(rs)}),
    ),
    (
        "lab",
        "drill_isolation",
        "drill VPC peered with production",
        _add(
            "aws:ec2/vpcPeeringConnection:VpcPeeringConnection",
            "leak",
            lambda rs: {"vpcId": "vpc-production", "peerVpcId": _drill_vpc_id(rs)},
        ),
    ),
    (
        "azure-to-aws",
        "drill_isolation",
        "drill route table with a transit gateway route",
        _edit(
            "aws:ec2/routeTable:RouteTable",
            lambda r: r.role == "drill",
            _set("routes", [{"cidrBlock": "10.0.0.0/8", "transitGatewayId": "tgw-1"}]),
        ),
    ),
    (
        "lab",
        "drill_isolation",
        "drill VPC attached to a transit gateway",
        _add("aws:ec2transitgateway/vpcAttachment:VpcAttachment", "leak", lambda rs: {"vpcId": _drill_vpc_id(rs)}),
    ),
    (
        "aws-to-azure",
        "drill_isolation",
        "drill VNet peered with production",
        _add(
            "azure-native:network:VirtualNetworkPeering",
            "leak",
            lambda rs: {"virtualNetworkName": "production", "remoteVirtualNetwork": {"id": _drill_vnet(rs).id}},
        ),
    ),
    (
        "aws-to-azure",
        "drill_isolation",
        "drill subnet with default outbound access",
        _edit(
            "azure-native:network:Subnet",
            lambda r: r.name.endswith("-drill"),
            _set("defaultOutboundAccess", True),
        ),
    ),
    (
        "lab",
        "drill_isolation",
        "no drill network at all",
        lambda rs: tuple(r for r in rs if not (r.type == "aws:ec2/vpc:Vpc" and r.role == "drill")),
    ),
]


@pytest.mark.parametrize(
    ("stack", "check", "mutation"),
    [pytest.param(stack, check, mutation, id=f"{check}: {what}") for stack, check, what, mutation in VIOLATIONS],
)
def test_each_violation_fails_exactly_its_check(stack: str, check: str, mutation: Mutation) -> None:
    found = violations(mutation(run_stack(stack).resources))
    assert set(found) == {check}, found


def test_every_check_has_a_violation_case() -> None:
    assert {check for _, check, _, _ in VIOLATIONS} == set(CHECKS)


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


def test_a_careless_program_fails_every_check() -> None:
    found = violations(run(_careless_program).resources)
    assert set(found) == set(CHECKS)
    assert found["versioning"] == ["S3 bucket open-bucket is not versioned"]
    assert found["admin_ports"] == ["security group ssh-anywhere opens SSH/RDP to the internet"]
    assert "S3 bucket open-bucket has public ACL public-read" in found["public_access"]
    assert any("grants '*'" in v for v in found["replication_role"])
    assert found["drill_isolation"] == ["drill VPC drill has an internet gateway (drill-exit)"]


def _only(check: str, resources: Sequence[RecordedResource]) -> list[str]:
    return CHECKS[check](resources)


def test_checks_pass_an_empty_stack_except_drill_isolation() -> None:
    assert {name: _only(name, []) for name in CHECKS if _only(name, [])} == {
        "drill_isolation": ["no drill network (a VPC or VNet tagged drctl:role=drill) is defined"]
    }
