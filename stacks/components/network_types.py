"""What the cloud-specific network builders hand back to :class:`FailoverNetwork`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi


@dataclass(frozen=True)
class Segment:
    """One network: the recovery network, or the isolated drill network."""

    network_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    security_group_ids: dict[str, pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]] = field(default_factory=list)


@dataclass(frozen=True)
class ProductionDns:
    zone_id: pulumi.Output[str]
    record_name: pulumi.Output[str]
    health_check_id: pulumi.Output[str | None]
    # Set only when the stack created the public zone: what its parent zone must delegate to.
    name_servers: pulumi.Output[list[str]] | None = None


@dataclass(frozen=True)
class DrillDns:
    zone_id: pulumi.Output[str]
    record_name: str


def carve(cidr: str, count: int) -> tuple[list[str], list[str]]:
    """Split ``cidr`` into ``count`` public and ``count`` private /20-sized (for a /16) blocks."""
    net = ipaddress.IPv4Network(cidr)
    blocks = [str(b) for b in net.subnets(prefixlen_diff=4)]
    half = len(blocks) // 2
    return blocks[:count], blocks[half : half + count]
