"""AWS side of :class:`FailoverNetwork`: the recovery VPC, the isolated drill VPC and per-tier security groups."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from stacks.components.network_types import Segment, carve
from stacks.config import NetworkConfig, TierConfig
from stacks.naming import Tags, tags
from stacks.providers import invoke_on, on

ANYWHERE = "0.0.0.0/0"


def recovery_vpc(
    name: str,
    parent: pulumi.Resource,
    provider: aws.Provider,
    net: NetworkConfig,
    tiers: Sequence[TierConfig],
    base: Tags,
) -> Segment:
    opts = on(provider, parent)
    vpc = aws.ec2.Vpc(
        f"{name}-recovery",
        cidr_block=net.recovery_cidr,
        enable_dns_hostnames=True,
        enable_dns_support=True,
        tags=tags(base, "recovery"),
        opts=opts,
    )
    zones = aws.get_availability_zones_output(state="available", opts=invoke_on(provider, parent))
    public_cidrs, private_cidrs = carve(net.recovery_cidr, net.az_count)
    igw = aws.ec2.InternetGateway(f"{name}-recovery", vpc_id=vpc.id, tags=tags(base, "recovery"), opts=opts)
    public_rt = aws.ec2.RouteTable(
        f"{name}-recovery-public",
        vpc_id=vpc.id,
        routes=[aws.ec2.RouteTableRouteArgs(cidr_block=ANYWHERE, gateway_id=igw.id)],
        tags=tags(base, "recovery"),
        opts=opts,
    )
    # Private subnets get no default route: standby hosts need nothing from the internet until failover.
    private_rt = aws.ec2.RouteTable(f"{name}-recovery-private", vpc_id=vpc.id, tags=tags(base, "recovery"), opts=opts)
    public = _subnets(f"{name}-recovery-public", vpc, zones, public_cidrs, public_rt, base, "recovery", opts)
    private = _subnets(f"{name}-recovery-private", vpc, zones, private_cidrs, private_rt, base, "recovery", opts)
    groups = _tier_groups(
        f"{name}-recovery", vpc, tiers, net.admin_cidrs, internet=ANYWHERE, base=base, role="recovery", opts=opts
    )
    return Segment(network_id=vpc.id, private_subnet_ids=private, public_subnet_ids=public, security_group_ids=groups)


def drill_vpc(
    name: str,
    parent: pulumi.Resource,
    provider: aws.Provider,
    net: NetworkConfig,
    tiers: Sequence[TierConfig],
    base: Tags,
) -> Segment:
    """A VPC with no internet gateway, NAT, peering or transit attachment: its only route is ``local``."""
    opts = on(provider, parent)
    vpc = aws.ec2.Vpc(
        f"{name}-drill",
        cidr_block=net.drill_cidr,
        enable_dns_hostnames=True,
        enable_dns_support=True,
        tags=tags(base, "drill"),
        opts=opts,
    )
    zones = aws.get_availability_zones_output(state="available", opts=invoke_on(provider, parent))
    _, private_cidrs = carve(net.drill_cidr, net.az_count)
    table = aws.ec2.RouteTable(f"{name}-drill", vpc_id=vpc.id, tags=tags(base, "drill"), opts=opts)
    private = _subnets(f"{name}-drill", vpc, zones, private_cidrs, table, base, "drill", opts)
    # Drill copies of internet-facing tiers only accept traffic from inside the drill VPC.
    groups = _tier_groups(
        f"{name}-drill", vpc, tiers, net.admin_cidrs, internet=net.drill_cidr, base=base, role="drill", opts=opts
    )
    return Segment(network_id=vpc.id, private_subnet_ids=private, security_group_ids=groups)


def _subnets(
    name: str,
    vpc: aws.ec2.Vpc,
    zones: pulumi.Output[aws.GetAvailabilityZonesResult],
    cidrs: Sequence[str],
    table: aws.ec2.RouteTable,
    base: Tags,
    role: str,
    opts: pulumi.ResourceOptions,
) -> list[pulumi.Output[str]]:
    ids: list[pulumi.Output[str]] = []
    for i, cidr in enumerate(cidrs):
        subnet = aws.ec2.Subnet(
            f"{name}-{i}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zones.names.apply(functools.partial(_nth, i)),
            # Nothing gets a public address implicitly; a failover runbook attaches one deliberately.
            map_public_ip_on_launch=False,
            tags=tags(base, role),
            opts=opts,
        )
        aws.ec2.RouteTableAssociation(f"{name}-{i}", subnet_id=subnet.id, route_table_id=table.id, opts=opts)
        ids.append(subnet.id)
    return ids


def _tier_groups(
    name: str,
    vpc: aws.ec2.Vpc,
    tiers: Sequence[TierConfig],
    admin_cidrs: Sequence[str],
    *,
    internet: str,
    base: Tags,
    role: str,
    opts: pulumi.ResourceOptions,
) -> dict[str, pulumi.Output[str]]:
    # Groups first, rules second: a tier's rule may reference a group declared later in the list.
    groups = {
        t.name: aws.ec2.SecurityGroup(
            f"{name}-{t.name}",
            vpc_id=vpc.id,
            description=f"drctl {role} {t.name} tier",
            tags=tags(base, role, t.name),
            opts=opts,
        )
        for t in tiers
    }
    for t in tiers:
        group = groups[t.name]
        rule = f"{name}-{t.name}"
        if t.ingress_from == "internet":
            aws.vpc.SecurityGroupIngressRule(
                f"{rule}-app",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=t.port,
                to_port=t.port,
                cidr_ipv4=internet,
                description=f"{t.name} traffic",
                opts=opts,
            )
        else:
            aws.vpc.SecurityGroupIngressRule(
                f"{rule}-app",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=t.port,
                to_port=t.port,
                referenced_security_group_id=groups[t.ingress_from].id,
                description=f"from {t.ingress_from}",
                opts=opts,
            )
        for i, cidr in enumerate(admin_cidrs):
            aws.vpc.SecurityGroupIngressRule(
                f"{rule}-admin-{i}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=t.admin_port,
                to_port=t.admin_port,
                cidr_ipv4=cidr,
                description="administration",
                opts=opts,
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{rule}-egress",
            security_group_id=group.id,
            ip_protocol="-1",
            cidr_ipv4=ANYWHERE if role == "recovery" else internet,
            opts=opts,
        )
    return {tier: group.id for tier, group in groups.items()}


def _nth(index: int, names: list[str]) -> str:
    # Wraps around when a region has fewer zones than az_count.
    return names[index % len(names)]
