"""The recovery network, an isolated drill network, and the DNS that moves users between sites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import pulumi
import pulumi_aws as aws

from stacks.components import failover_dns, network_aws, network_azure
from stacks.components.network_types import DrillDns, ProductionDns, Segment
from stacks.config import Cloud, DnsConfig, NetworkConfig, TierConfig
from stacks.naming import Tags
from stacks.providers import AzureTarget

TYPE = "drctl:dr:FailoverNetwork"
T = TypeVar("T")


@dataclass(frozen=True)
class AwsNetworkArgs:
    recovery: aws.Provider
    recovery_region: str
    # Route 53 is global; records and health checks go through the primary-region provider.
    dns: aws.Provider


@dataclass(frozen=True)
class FailoverNetworkArgs:
    name_prefix: str
    recovery_cloud: Cloud
    tiers: tuple[TierConfig, ...]
    network: NetworkConfig
    dns: DnsConfig
    tags: Tags
    aws: AwsNetworkArgs | None = None
    azure: AzureTarget | None = None


class FailoverNetwork(pulumi.ComponentResource):
    recovery: Segment
    drill: Segment
    production_dns: ProductionDns
    drill_dns: DrillDns

    def __init__(self, name: str, args: FailoverNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        if args.recovery_cloud == "aws":
            cloud = _need(args.aws, "aws")
            self.recovery = network_aws.recovery_vpc(name, self, cloud.recovery, args.network, args.tiers, args.tags)
            self.drill = network_aws.drill_vpc(name, self, cloud.recovery, args.network, args.tiers, args.tags)
            self.drill_dns = failover_dns.route53_drill(
                name, self, cloud.dns, cloud.recovery_region, self.drill.network_id, args.dns, args.tags
            )
        else:
            target = _need(args.azure, "azure")
            self.recovery = network_azure.recovery_vnet(name, self, target, args.network, args.tiers, args.tags)
            self.drill = network_azure.drill_vnet(name, self, target, args.network, args.tiers, args.tags)
            self.drill_dns = failover_dns.azure_drill(name, self, target, self.drill.network_id, args.dns, args.tags)
        self.production_dns = self._production_dns(name, args)
        self.register_outputs(
            {
                "recovery_network_id": self.recovery.network_id,
                "recovery_subnet_ids": self.recovery.private_subnet_ids,
                "recovery_public_subnet_ids": self.recovery.public_subnet_ids,
                "security_group_ids": self.recovery.security_group_ids,
                "drill_network_id": self.drill.network_id,
                "drill_subnet_ids": self.drill.private_subnet_ids,
                "drill_security_group_ids": self.drill.security_group_ids,
                "dns_zone_id": self.production_dns.zone_id,
                "production_record_name": self.production_dns.record_name,
                "health_check_id": self.production_dns.health_check_id,
                "name_servers": self.production_dns.name_servers,
                "drill_dns_zone_id": self.drill_dns.zone_id,
                "drill_record_name": self.drill_dns.record_name,
            }
        )

    def _production_dns(self, name: str, args: FailoverNetworkArgs) -> ProductionDns:
        provider = args.dns.provider
        if provider == "route53":
            return failover_dns.route53_production(name, self, _need(args.aws, "aws").dns, args.dns, args.tags)
        target = _need(args.azure, "azure")
        if provider == "traffic_manager":
            return failover_dns.traffic_manager_production(name, self, target, args.dns, args.name_prefix, args.tags)
        return failover_dns.azure_dns_production(name, self, target, args.dns, args.tags)


def _need(value: T | None, cloud: str) -> T:
    if value is None:
        # Config validation rejects this first; reaching here is a programming error in __main__.
        raise ValueError(f"FailoverNetwork needs {cloud} arguments for this configuration")
    return value
