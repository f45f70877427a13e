"""Route 53: the production zone with its health check and failover records, and the private drill zone."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from localstack.seed.clients import Clients
from localstack.seed.config import require_aws
from localstack.seed.network import first_id
from localstack.seed.outputs import DnsIds, Names
from stacks.config import StackConfig, is_ipv4
from stacks.naming import tags

if TYPE_CHECKING:
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_route53.type_defs import ChangeTypeDef, HealthCheckConfigTypeDef

DNS_TTL = 60


def bare_zone_id(zone_id: str) -> str:
    # The API says "/hostedzone/Z123"; the stack outputs (and every other API parameter) use "Z123".
    return zone_id.rsplit("/", 1)[-1]


def find_zone(r53: Route53Client, name: str, comment: str) -> str | None:
    fqdn = name.rstrip(".") + "."
    return first_id(
        [
            bare_zone_id(z["Id"])
            for page in r53.get_paginator("list_hosted_zones").paginate()
            for z in page["HostedZones"]
            if z["Name"] == fqdn and z.get("Config", {}).get("Comment") == comment
        ]
    )


def ensure_zone(
    r53: Route53Client, name: str, comment: str, labels: Mapping[str, str], private_vpc: tuple[str, str] | None = None
) -> str:
    """A hosted zone identified by name and comment; ``private_vpc`` (region, VPC id) makes it a private zone."""
    found = find_zone(r53, name, comment)
    if found is None:
        # A zone's caller reference can never be reused, even after deletion: make a fresh one per creation.
        reference = f"drctl-seed-{uuid.uuid4().hex}"
        if private_vpc is None:
            zone = r53.create_hosted_zone(Name=name, CallerReference=reference, HostedZoneConfig={"Comment": comment})
        else:
            region, vpc_id = private_vpc
            zone = r53.create_hosted_zone(
                Name=name,
                CallerReference=reference,
                HostedZoneConfig={"Comment": comment, "PrivateZone": True},
                VPC={"VPCRegion": region, "VPCId": vpc_id},  # type: ignore[typeddict-item]  # region is config text
            )
        found = bare_zone_id(zone["HostedZone"]["Id"])
    r53.change_tags_for_resource(
        ResourceType="hostedzone", ResourceId=found, AddTags=[{"Key": k, "Value": v} for k, v in labels.items()]
    )
    return found


def ensure_health_check(r53: Route53Client, reference: str, config: StackConfig, labels: Mapping[str, str]) -> str:
    """HTTPS health check of the primary endpoint; it is what flips the failover records."""
    dns = config.dns
    found = first_id(
        [
            h["Id"]
            for page in r53.get_paginator("list_health_checks").paginate()
            for h in page["HealthChecks"]
            if h["CallerReference"] == reference
        ]
    )
    if found is None:
        check: HealthCheckConfigTypeDef = {
            "Type": "HTTPS",
            "Port": dns.health_check_port,
            "ResourcePath": dns.health_check_path,
            "FailureThreshold": 3,
            "RequestInterval": 30,
        }
        if is_ipv4(dns.primary_endpoint):
            check["IPAddress"] = dns.primary_endpoint
        else:
            check["FullyQualifiedDomainName"] = dns.primary_endpoint
        found = r53.create_health_check(CallerReference=reference, HealthCheckConfig=check)["HealthCheck"]["Id"]
    r53.change_tags_for_resource(
        ResourceType="healthcheck", ResourceId=found, AddTags=[{"Key": k, "Value": v} for k, v in labels.items()]
    )
    return found


def record_type(endpoint: str) -> str:
    return "A" if is_ipv4(endpoint) else "CNAME"


def failover_changes(config: StackConfig, health_check_id: str) -> list[ChangeTypeDef]:
    """PRIMARY answers while its health check passes; SECONDARY (the recovery site) answers otherwise."""
    dns = config.dns
    changes: list[ChangeTypeDef] = []
    for role, endpoint, check in (
        ("PRIMARY", dns.primary_endpoint, health_check_id),
        ("SECONDARY", dns.recovery_endpoint, None),
    ):
        record: dict[str, Any] = {
            "Name": dns.production_fqdn,
            "Type": record_type(endpoint),
            "TTL": DNS_TTL,
            "SetIdentifier": role.lower(),
            "Failover": role,
            "ResourceRecords": [{"Value": endpoint}],
        }
        if check is not None:
            record["HealthCheckId"] = check
        changes.append({"Action": "UPSERT", "ResourceRecordSet": record})  # type: ignore[typeddict-item]
    return changes


def ensure_dns(clients: Clients, config: StackConfig, names: Names, drill_vpc: str, base: Mapping[str, str]) -> DnsIds:
    aws, dns, r53 = require_aws(config), config.dns, clients.route53
    zone = ensure_zone(r53, dns.zone_name, names.zone_comment("production"), tags(base, "dns"))
    check = ensure_health_check(r53, names.health_check_reference, config, tags(base, "dns"))
    # UPSERT is idempotent: a second run rewrites the same records.
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": failover_changes(config, check)})
    # Drills rewrite their own record in a zone only the drill VPC resolves, never the production name.
    drill_zone = ensure_zone(
        r53,
        dns.drill_zone_name,
        names.zone_comment("drill"),
        tags(base, "drill"),
        private_vpc=(aws.recovery_region, drill_vpc),
    )
    drill_record: ChangeTypeDef = {
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": dns.drill_fqdn,
            "Type": "A",
            "TTL": DNS_TTL,
            "ResourceRecords": [{"Value": dns.drill_endpoint}],
        },
    }
    r53.change_resource_record_sets(HostedZoneId=drill_zone, ChangeBatch={"Changes": [drill_record]})
    return DnsIds(zone_id=zone, health_check_id=check, drill_zone_id=drill_zone)
