"""Azure side of :class:`FailoverNetwork`: the recovery VNet, the isolated drill VNet and per-tier NSGs."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_azure_native as azure_native

from stacks.components.network_types import Segment, carve
from stacks.config import NetworkConfig, TierConfig
from stacks.naming import TIER_TAG, Tags, tags
from stacks.providers import AzureTarget, on

network = azure_native.network


def recovery_vnet(
    name: str, parent: pulumi.Resource, target: AzureTarget, net: NetworkConfig, tiers: Sequence[TierConfig], base: Tags
) -> Segment:
    public_cidrs, private_cidrs = carve(net.recovery_cidr, 1)
    vnet = _vnet(f"{name}-recovery", parent, target, net.recovery_cidr, tags(base, "recovery"))
    public = _subnet(f"{name}-recovery-public", parent, target, vnet, public_cidrs[0], outbound=True)
    # One subnet at a time: Azure fails concurrent subnet writes to one VNet with AnotherOperationInProgress
    # (pulumi/pulumi-azure-native#699), so each subnet waits for the one before it.
    private = _subnet(f"{name}-recovery-private", parent, target, vnet, private_cidrs[0], outbound=True, after=public)
    groups = _tier_groups(
        f"{name}-recovery",
        parent,
        target,
        tiers,
        net.admin_cidrs,
        internet="Internet",
        internal=private_cidrs[0],
        base=tags(base, "recovery"),
    )
    return Segment(
        network_id=vnet.id,
        private_subnet_ids=[private.id],
        public_subnet_ids=[public.id],
        security_group_ids=groups,
    )


def drill_vnet(
    name: str, parent: pulumi.Resource, target: AzureTarget, net: NetworkConfig, tiers: Sequence[TierConfig], base: Tags
) -> Segment:
    """A VNet with no peerings and no default outbound access: nothing in it can reach production."""
    _, private_cidrs = carve(net.drill_cidr, 1)
    vnet = _vnet(f"{name}-drill", parent, target, net.drill_cidr, tags(base, "drill"))
    private = _subnet(f"{name}-drill", parent, target, vnet, private_cidrs[0], outbound=False)
    groups = _tier_groups(
        f"{name}-drill",
        parent,
        target,
        tiers,
        net.admin_cidrs,
        internet=net.drill_cidr,
        internal=private_cidrs[0],
        base=tags(base, "drill"),
    )
    return Segment(network_id=vnet.id, private_subnet_ids=[private.id], security_group_ids=groups)


def _vnet(name: str, parent: pulumi.Resource, target: AzureTarget, cidr: str, labels: Tags) -> network.VirtualNetwork:
    return network.VirtualNetwork(
        name,
        resource_group_name=target.resource_group_name,
        location=target.location,
        address_space=network.AddressSpaceArgs(address_prefixes=[cidr]),
        tags=labels,
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=target.provider,
            # Subnets are separate resources; the VNet must not reconcile its inline subnet list against them.
            ignore_changes=["subnets"],
        ),
    )


def _subnet(
    name: str,
    parent: pulumi.Resource,
    target: AzureTarget,
    vnet: network.VirtualNetwork,
    cidr: str,
    *,
    outbound: bool,
    after: network.Subnet | None = None,
) -> network.Subnet:
    """A subnet of ``vnet``, created only once ``after`` (the VNet's previous subnet) exists."""
    return network.Subnet(
        name,
        resource_group_name=target.resource_group_name,
        virtual_network_name=vnet.name,
        address_prefix=cidr,
        default_outbound_access=outbound,
        opts=pulumi.ResourceOptions(
            parent=parent, provider=target.provider, depends_on=[after] if after is not None else None
        ),
    )


def _tier_groups(
    name: str,
    parent: pulumi.Resource,
    target: AzureTarget,
    tiers: Sequence[TierConfig],
    admin_cidrs: Sequence[str],
    *,
    internet: str,
    internal: str,
    base: Tags,
) -> dict[str, pulumi.Output[str]]:
    groups: dict[str, pulumi.Output[str]] = {}
    for t in tiers:
        rules = [
            network.SecurityRuleArgs(
                name=f"{t.name}-traffic",
                priority=100,
                direction="Inbound",
                access="Allow",
                protocol="Tcp",
                source_address_prefix=internet if t.ingress_from == "internet" else internal,
                source_port_range="*",
                destination_address_prefix="*",
                destination_port_range=str(t.port),
            )
        ]
        if admin_cidrs:
            rules.append(
                network.SecurityRuleArgs(
                    name="administration",
                    priority=110,
                    direction="Inbound",
                    access="Allow",
                    protocol="Tcp",
                    source_address_prefixes=list(admin_cidrs),
                    source_port_range="*",
                    destination_address_prefix="*",
                    destination_port_range=str(t.admin_port),
                )
            )
        nsg = network.NetworkSecurityGroup(
            f"{name}-{t.name}",
            resource_group_name=target.resource_group_name,
            location=target.location,
            security_rules=rules,
            tags={**base, TIER_TAG: t.name},
            opts=on(target.provider, parent),
        )
        groups[t.name] = nsg.id
    return groups
