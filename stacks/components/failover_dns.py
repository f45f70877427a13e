"""DNS for :class:`FailoverNetwork`: the production failover name, and a private drill name beside it.

The drill record lives in its own private zone, resolvable only from the drill network, so a drill that
rewrites it can never move production traffic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_azure_native as azure_native

from stacks.components.network_types import DrillDns, ProductionDns
from stacks.config import DnsConfig, is_ipv4
from stacks.naming import Tags, tags
from stacks.providers import AzureTarget, invoke_on, on

TTL = 60
EXTERNAL_ENDPOINT = "Microsoft.Network/trafficManagerProfiles/externalEndpoints"


def record_type(endpoint: str) -> str:
    return "A" if is_ipv4(endpoint) else "CNAME"


def traffic_manager_name(prefix: str, record_name: str, subscription_id: str, resource_group: str) -> str:
    """A Traffic Manager label that no other subscription or resource group derives.

    The label becomes ``<label>.trafficmanager.net``, one namespace for every Azure customer, so
    ``<prefix>-<record>`` alone collides with anyone who picked the same words and `pulumi up` fails.
    """
    digest = hashlib.sha256(f"{subscription_id}/{resource_group}".lower().encode()).hexdigest()[:8]
    return f"{prefix}-{record_name}-{digest}"


def _listed(servers: Sequence[str] | None) -> list[str]:
    return list(servers or [])


def announce_delegation(zone_name: str, name_servers: pulumi.Output[list[str]], resource: pulumi.Resource) -> None:
    """Warn on every `pulumi up` until the stack-outputs contract can carry the name servers."""

    def warn(servers: Sequence[str] | None) -> None:
        if servers:
            pulumi.log.warn(
                f"{zone_name} is a new public zone: nothing resolves it until its parent zone delegates it "
                f"with NS records for {', '.join(servers)}",
                resource=resource,
            )

    name_servers.apply(warn)


def route53_production(
    name: str, parent: pulumi.Resource, provider: aws.Provider, dns: DnsConfig, base: Tags
) -> ProductionDns:
    opts = on(provider, parent)
    name_servers: pulumi.Output[list[str]] | None = None
    if dns.zone_id is not None:
        zone_id: pulumi.Output[str] = pulumi.Output.from_input(dns.zone_id)
    elif dns.create_zone:
        zone = aws.route53.Zone(
            f"{name}-zone", name=dns.zone_name, comment="drctl production zone", tags=tags(base, "dns"), opts=opts
        )
        zone_id = zone.zone_id
        name_servers = zone.name_servers.apply(_listed)
        announce_delegation(dns.zone_name, name_servers, zone)
    else:
        # Config validation refuses this first; a zone must never be created by default.
        raise ValueError("route53 production DNS needs drctl:dns.zone_id or drctl:dns.create_zone")
    is_ip = record_type(dns.primary_endpoint) == "A"
    check = aws.route53.HealthCheck(
        f"{name}-primary",
        type="HTTPS",
        ip_address=dns.primary_endpoint if is_ip else None,
        fqdn=None if is_ip else dns.primary_endpoint,
        port=dns.health_check_port,
        resource_path=dns.health_check_path,
        failure_threshold=3,
        request_interval=30,
        tags=tags(base, "dns"),
        opts=opts,
    )
    for role, endpoint, health in (
        ("PRIMARY", dns.primary_endpoint, check.id),
        ("SECONDARY", dns.recovery_endpoint, None),
    ):
        aws.route53.Record(
            f"{name}-{role.lower()}",
            zone_id=zone_id,
            name=dns.production_fqdn,
            type=record_type(endpoint),
            ttl=TTL,
            records=[endpoint],
            set_identifier=role.lower(),
            failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=role)],
            health_check_id=health,
            opts=opts,
        )
    return ProductionDns(
        zone_id=zone_id,
        record_name=pulumi.Output.from_input(dns.production_fqdn),
        health_check_id=check.id,
        name_servers=name_servers,
    )


def traffic_manager_production(
    name: str, parent: pulumi.Resource, target: AzureTarget, dns: DnsConfig, prefix: str, base: Tags
) -> ProductionDns:
    tm = azure_native.trafficmanager
    if dns.traffic_manager_name is not None:
        relative_name: pulumi.Output[str] = pulumi.Output.from_input(dns.traffic_manager_name)
    else:
        client = azure_native.authorization.get_client_config_output(opts=invoke_on(target.provider, parent))
        relative_name = pulumi.Output.all(client.subscription_id, target.resource_group_name).apply(
            lambda ids: traffic_manager_name(prefix, dns.record_name, ids[0], ids[1])
        )
    profile = tm.Profile(
        f"{name}-tm",
        resource_group_name=target.resource_group_name,
        location="global",
        profile_status="Enabled",
        traffic_routing_method="Priority",
        dns_config=tm.DnsConfigArgs(relative_name=relative_name, ttl=TTL),
        monitor_config=tm.MonitorConfigArgs(
            protocol="HTTPS",
            port=dns.health_check_port,
            path=dns.health_check_path,
            interval_in_seconds=30,
            timeout_in_seconds=10,
            tolerated_number_of_failures=3,
        ),
        endpoints=[
            tm.EndpointArgs(
                name=role, type=EXTERNAL_ENDPOINT, target=endpoint, priority=priority, endpoint_status="Enabled"
            )
            for role, endpoint, priority in (
                ("primary", dns.primary_endpoint, 1),
                ("recovery", dns.recovery_endpoint, 2),
            )
        ],
        tags=tags(base, "dns"),
        opts=on(target.provider, parent),
    )
    # Traffic Manager's own monitor is the health check; runbooks query it through the profile.
    return ProductionDns(
        zone_id=profile.id,
        record_name=relative_name.apply(lambda label: f"{label}.trafficmanager.net"),
        health_check_id=profile.id,
    )


def azure_dns_production(
    name: str, parent: pulumi.Resource, target: AzureTarget, dns: DnsConfig, base: Tags
) -> ProductionDns:
    opts = on(target.provider, parent)
    if not dns.create_zone:
        # Config validation refuses this first; a zone must never be created by default.
        raise ValueError("azure_dns production DNS needs drctl:dns.create_zone")
    zone = azure_native.dns.Zone(
        f"{name}-zone",
        zone_name=dns.zone_name,
        resource_group_name=target.resource_group_name,
        location="global",
        tags=tags(base, "dns"),
        opts=opts,
    )
    kind = record_type(dns.primary_endpoint)
    # Azure DNS has no health-based failover: the failover runbook rewrites this record.
    azure_native.dns.RecordSet(
        f"{name}-production",
        zone_name=zone.name,
        resource_group_name=target.resource_group_name,
        relative_record_set_name=dns.record_name,
        record_type=kind,
        ttl=TTL,
        a_records=[azure_native.dns.ARecordArgs(ipv4_address=dns.primary_endpoint)] if kind == "A" else None,
        cname_record=azure_native.dns.CnameRecordArgs(cname=dns.primary_endpoint) if kind == "CNAME" else None,
        opts=opts,
    )
    name_servers = zone.name_servers.apply(_listed)
    announce_delegation(dns.zone_name, name_servers, zone)
    return ProductionDns(
        zone_id=zone.id,
        record_name=pulumi.Output.from_input(dns.production_fqdn),
        health_check_id=pulumi.Output.from_input(None),
        name_servers=name_servers,
    )


def route53_drill(
    name: str,
    parent: pulumi.Resource,
    provider: aws.Provider,
    region: str,
    drill_vpc_id: pulumi.Output[str],
    dns: DnsConfig,
    base: Tags,
) -> DrillDns:
    opts = on(provider, parent)
    zone = aws.route53.Zone(
        f"{name}-drill-zone",
        name=dns.drill_zone_name,
        comment="drctl drill zone; private to the drill VPC",
        vpcs=[aws.route53.ZoneVpcArgs(vpc_id=drill_vpc_id, vpc_region=region)],
        # Drills add records at run time; they must not block teardown.
        force_destroy=True,
        tags=tags(base, "drill"),
        opts=opts,
    )
    aws.route53.Record(
        f"{name}-drill",
        zone_id=zone.zone_id,
        name=dns.drill_fqdn,
        type="A",
        ttl=TTL,
        records=[dns.drill_endpoint],
        opts=opts,
    )
    return DrillDns(zone_id=zone.zone_id, record_name=dns.drill_fqdn)


def azure_drill(
    name: str,
    parent: pulumi.Resource,
    target: AzureTarget,
    drill_vnet_id: pulumi.Output[str],
    dns: DnsConfig,
    base: Tags,
) -> DrillDns:
    private = azure_native.privatedns
    opts = on(target.provider, parent)
    zone = private.PrivateZone(
        f"{name}-drill-zone",
        private_zone_name=dns.drill_zone_name,
        resource_group_name=target.resource_group_name,
        location="Global",
        tags=tags(base, "drill"),
        opts=opts,
    )
    private.VirtualNetworkLink(
        f"{name}-drill-link",
        private_zone_name=zone.name,
        resource_group_name=target.resource_group_name,
        location="Global",
        registration_enabled=False,
        virtual_network=private.SubResourceArgs(id=drill_vnet_id),
        opts=opts,
    )
    private.PrivateRecordSet(
        f"{name}-drill",
        private_zone_name=zone.name,
        resource_group_name=target.resource_group_name,
        record_type="A",
        relative_record_set_name=dns.record_name,
        ttl=TTL,
        a_records=[private.ARecordArgs(ipv4_address=dns.drill_endpoint)],
        opts=opts,
    )
    return DrillDns(zone_id=zone.id, record_name=dns.drill_fqdn)
