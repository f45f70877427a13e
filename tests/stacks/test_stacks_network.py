"""FailoverNetwork: recovery and drill networks, tier firewalls, and DNS per configured provider."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.components.failover_dns import traffic_manager_name
from stacks.components.failover_network import AwsNetworkArgs, FailoverNetwork, FailoverNetworkArgs
from stacks.config import DnsConfig, NetworkConfig
from stacks.policy.network import check_admin_ports, check_drill_isolation
from tests.stacks.pulumi_harness import SUBSCRIPTION_ID, Run, run
from tests.stacks.samples import RG_NAME, TAGS, TIERS, aws_pair, azure_target

NET = NetworkConfig(admin_cidrs=("10.200.0.0/24",), recovery_cidr="10.60.0.0/16", drill_cidr="10.61.0.0/16")
VPC, SUBNET, ROUTE_TABLE = "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def _dns(provider: Any, **overrides: Any) -> DnsConfig:
    values: dict[str, Any] = {
        "provider": provider,
        "zone_name": "example.com",
        "primary_endpoint": "203.0.113.10",
        "recovery_endpoint": "198.51.100.10",
        "drill_endpoint": "10.61.128.10",
        "drill_zone_name": "drill.internal",
    } | overrides
    return DnsConfig(**values)


def _outputs(network: FailoverNetwork) -> dict[str, Any]:
    return {
        "recovery_network_id": network.recovery.network_id,
        "recovery_subnet_ids": network.recovery.private_subnet_ids,
        "public_subnet_ids": network.recovery.public_subnet_ids,
        "drill_network_id": network.drill.network_id,
        "drill_subnet_ids": network.drill.private_subnet_ids,
        "security_group_ids": network.recovery.security_group_ids,
        "drill_security_group_ids": network.drill.security_group_ids,
        "zone_id": network.production_dns.zone_id,
        "record": network.production_dns.record_name,
        "health_check_id": network.production_dns.health_check_id,
        "drill_zone_id": network.drill_dns.zone_id,
        "drill_record": network.drill_dns.record_name,
    }


def _aws(dns: DnsConfig) -> Run:
    def program() -> dict[str, Any]:
        p = aws_pair()
        args = FailoverNetworkArgs(
            "drctl-test", "aws", TIERS, NET, dns, TAGS, aws=AwsNetworkArgs(p.recovery, "us-west-2", p.primary)
        )
        return _outputs(FailoverNetwork("net", args))

    return run(program)


def _azure(dns: DnsConfig) -> Run:
    def program() -> dict[str, Any]:
        args = FailoverNetworkArgs("drctl-test", "azure", TIERS, NET, dns, TAGS, azure=azure_target())
        return _outputs(FailoverNetwork("net", args))

    return run(program)


@pytest.fixture(scope="module")
def aws_net() -> Run:
    return _aws(_dns("route53", create_zone=True))


def _by_role(result: Run, role: str) -> Any:
    (vpc,) = [v for v in result.of_type(VPC) if v.role == role]
    return vpc


def test_recovery_vpc_has_public_and_private_subnets_in_each_zone(aws_net: Run) -> None:
    vpc = _by_role(aws_net, "recovery")
    assert vpc.inputs["cidrBlock"] == "10.60.0.0/16"
    subnets = [s for s in aws_net.of_type(SUBNET) if s.inputs["vpcId"] == vpc.id]
    assert sorted(s.inputs["cidrBlock"] for s in subnets) == [
        "10.60.0.0/20", "10.60.128.0/20", "10.60.144.0/20", "10.60.16.0/20",
    ]  # fmt: skip
    assert {s.inputs["availabilityZone"] for s in subnets} == {"zone-a", "zone-b"}
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    assert all(Run.provider_name(s) == "aws-recovery" for s in subnets)
    assert aws_net.values["recovery_network_id"] == vpc.id
    private = {s.id for s in subnets if s.name.startswith("net-recovery-private")}
    assert set(aws_net.values["recovery_subnet_ids"]) == private
    assert len(aws_net.values["public_subnet_ids"]) == 2


def test_only_the_public_route_table_reaches_the_internet_gateway(aws_net: Run) -> None:
    vpc = _by_role(aws_net, "recovery")
    (igw,) = aws_net.of_type("aws:ec2/internetGateway:InternetGateway")
    assert igw.inputs["vpcId"] == vpc.id
    tables = {t.name: t for t in aws_net.of_type(ROUTE_TABLE)}
    assert tables["net-recovery-public"].inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": igw.id}]
    assert not tables["net-recovery-private"].inputs.get("routes")
    associations = aws_net.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    public_ids = set(aws_net.values["public_subnet_ids"])
    for association in associations:
        if association.inputs["subnetId"] in public_ids:
            assert association.inputs["routeTableId"] == tables["net-recovery-public"].id


def test_drill_vpc_is_isolated(aws_net: Run) -> None:
    drill = _by_role(aws_net, "drill")
    assert drill.inputs["cidrBlock"] == "10.61.0.0/16"
    (table,) = [t for t in aws_net.of_type(ROUTE_TABLE) if t.inputs["vpcId"] == drill.id]
    assert not table.inputs.get("routes")
    assert all(g.inputs["vpcId"] != drill.id for g in aws_net.of_type("aws:ec2/internetGateway:InternetGateway"))
    assert check_drill_isolation(aws_net.resources) == []
    assert len(aws_net.values["drill_subnet_ids"]) == 2


def test_tier_groups_chain_traffic_and_keep_admin_ports_private(aws_net: Run) -> None:
    groups = aws_net.values["security_group_ids"]
    assert set(groups) == {"db", "app", "web"}
    rules = {r.name: r.inputs for r in aws_net.of_type(INGRESS)}
    assert rules["net-recovery-db-app"]["referencedSecurityGroupId"] == groups["app"]
    assert rules["net-recovery-app-app"]["referencedSecurityGroupId"] == groups["web"]
    assert rules["net-recovery-web-app"]["cidrIpv4"] == "0.0.0.0/0"
    assert rules["net-recovery-web-admin-0"]["fromPort"] == 3389  # the web tier is Windows
    assert rules["net-recovery-db-admin-0"]["fromPort"] == 22
    admin = [r for name, r in rules.items() if "-admin-" in name]
    assert {r["cidrIpv4"] for r in admin} == {"10.200.0.0/24"}
    assert check_admin_ports(aws_net.resources) == []


def test_drill_groups_never_accept_internet_traffic(aws_net: Run) -> None:
    rules = {r.name: r.inputs for r in aws_net.of_type(INGRESS)}
    assert rules["net-drill-web-app"]["cidrIpv4"] == "10.61.0.0/16"
    drill_groups = set(aws_net.values["drill_security_group_ids"].values())
    assert drill_groups.isdisjoint(aws_net.values["security_group_ids"].values())
    egress = [r.inputs for r in aws_net.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")]
    assert {e["cidrIpv4"] for e in egress if e["securityGroupId"] in drill_groups} == {"10.61.0.0/16"}


def test_route53_fails_over_on_the_primary_health_check(aws_net: Run) -> None:
    (check,) = aws_net.of_type("aws:route53/healthCheck:HealthCheck")
    assert check.inputs["ipAddress"] == "203.0.113.10"
    assert check.inputs["resourcePath"] == "/healthz"
    records = {
        r.inputs["setIdentifier"]: r.inputs
        for r in aws_net.of_type("aws:route53/record:Record")
        if r.inputs.get("setIdentifier")
    }
    assert records["primary"]["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]
    assert records["primary"]["healthCheckId"] == check.id
    assert records["primary"]["records"] == ["203.0.113.10"]
    assert records["secondary"]["failoverRoutingPolicies"] == [{"type": "SECONDARY"}]
    assert records["secondary"]["records"] == ["198.51.100.10"]
    assert {r["name"] for r in records.values()} == {"app.example.com"}
    assert aws_net.values["health_check_id"] == check.id
    assert aws_net.values["record"] == "app.example.com"


def test_drill_record_lives_in_a_private_zone_of_the_drill_vpc(aws_net: Run) -> None:
    zones = {z.inputs["name"]: z for z in aws_net.of_type("aws:route53/zone:Zone")}
    drill_zone = zones["drill.internal"]
    assert drill_zone.inputs["vpcs"] == [{"vpcId": _by_role(aws_net, "drill").id, "vpcRegion": "us-west-2"}]
    assert "vpcs" not in zones["example.com"].inputs
    (record,) = [r for r in aws_net.of_type("aws:route53/record:Record") if r.inputs["zoneId"] == drill_zone.id]
    assert record.inputs["name"] == "app.drill.internal"
    assert record.inputs["records"] == ["10.61.128.10"]
    assert aws_net.values["drill_zone_id"] == drill_zone.id
    assert aws_net.values["zone_id"] == zones["example.com"].id


def test_an_existing_route53_zone_is_used_not_created() -> None:
    result = _aws(_dns("route53", zone_id="Z0EXISTING"))
    assert [z.inputs["name"] for z in result.of_type("aws:route53/zone:Zone")] == ["drill.internal"]
    assert result.values["zone_id"] == "Z0EXISTING"


def test_host_name_endpoints_become_cname_records_checked_by_fqdn() -> None:
    result = _aws(
        _dns("route53", zone_id="Z0EXISTING", primary_endpoint="eu.example.net", recovery_endpoint="dr.example.net")
    )
    (check,) = result.of_type("aws:route53/healthCheck:HealthCheck")
    assert check.inputs["fqdn"] == "eu.example.net"
    assert "ipAddress" not in check.inputs
    failover = [r for r in result.of_type("aws:route53/record:Record") if r.inputs.get("setIdentifier")]
    assert {r.inputs["type"] for r in failover} == {"CNAME"}


@pytest.fixture(scope="module")
def azure_tm() -> Run:
    return _azure(_dns("traffic_manager"))


def test_azure_drill_vnet_has_no_outbound_access_or_peering(azure_tm: Run) -> None:
    vnets = {v.tag("drctl:role"): v for v in azure_tm.of_type("azure-native:network:VirtualNetwork")}
    assert vnets["recovery"].inputs["addressSpace"] == {"addressPrefixes": ["10.60.0.0/16"]}
    assert vnets["drill"].inputs["addressSpace"] == {"addressPrefixes": ["10.61.0.0/16"]}
    drill_subnets = [
        s for s in azure_tm.of_type("azure-native:network:Subnet")
        if s.inputs["virtualNetworkName"] == vnets["drill"].outputs["name"]
    ]  # fmt: skip
    assert [s.inputs["defaultOutboundAccess"] for s in drill_subnets] == [False]
    assert azure_tm.of_type("azure-native:network:VirtualNetworkPeering") == []
    assert check_drill_isolation(azure_tm.resources) == []
    assert azure_tm.values["drill_network_id"] == vnets["drill"].id


def test_azure_nsgs_allow_admin_only_from_admin_ranges(azure_tm: Run) -> None:
    nsgs = azure_tm.of_type("azure-native:network:NetworkSecurityGroup")
    assert len(nsgs) == 6
    for nsg in nsgs:
        admin = [r for r in nsg.inputs["securityRules"] if r["name"] == "administration"]
        assert admin[0]["sourceAddressPrefixes"] == ["10.200.0.0/24"]
    recovery_web = next(n for n in nsgs if n.tag("drctl:role") == "recovery" and n.tag("drctl:tier") == "web")
    assert recovery_web.inputs["securityRules"][0]["sourceAddressPrefix"] == "Internet"
    assert recovery_web.inputs["securityRules"][1]["destinationPortRange"] == "3389"
    drill_web = next(n for n in nsgs if n.tag("drctl:role") == "drill" and n.tag("drctl:tier") == "web")
    assert drill_web.inputs["securityRules"][0]["sourceAddressPrefix"] == "10.61.0.0/16"
    assert check_admin_ports(azure_tm.resources) == []


def test_traffic_manager_routes_by_priority_to_primary_then_recovery(azure_tm: Run) -> None:
    (profile,) = azure_tm.of_type("azure-native:trafficmanager:Profile")
    assert profile.inputs["trafficRoutingMethod"] == "Priority"
    assert profile.inputs["monitorConfig"]["path"] == "/healthz"
    endpoints = {e["name"]: e for e in profile.inputs["endpoints"]}
    assert (endpoints["primary"]["priority"], endpoints["primary"]["target"]) == (1, "203.0.113.10")
    assert (endpoints["recovery"]["priority"], endpoints["recovery"]["target"]) == (2, "198.51.100.10")
    label = traffic_manager_name("drctl-test", "app", SUBSCRIPTION_ID, RG_NAME)
    assert profile.inputs["dnsConfig"]["relativeName"] == label
    assert azure_tm.values["record"] == f"{label}.trafficmanager.net"
    assert azure_tm.values["zone_id"] == profile.id
    assert azure_tm.values["health_check_id"] == profile.id


def test_azure_drill_zone_is_private_and_linked_only_to_the_drill_vnet(azure_tm: Run) -> None:
    (zone,) = azure_tm.of_type("azure-native:privatedns:PrivateZone")
    (link,) = azure_tm.of_type("azure-native:privatedns:VirtualNetworkLink")
    (record,) = azure_tm.of_type("azure-native:privatedns:PrivateRecordSet")
    assert zone.inputs["privateZoneName"] == "drill.internal"
    assert link.inputs["virtualNetwork"] == {"id": azure_tm.values["drill_network_id"]}
    assert link.inputs["registrationEnabled"] is False
    assert record.inputs["aRecords"] == [{"ipv4Address": "10.61.128.10"}]
    assert azure_tm.values["drill_record"] == "app.drill.internal"


def test_azure_dns_publishes_the_production_record_without_health_checks() -> None:
    result = _azure(_dns("azure_dns", create_zone=True))
    (zone,) = result.of_type("azure-native:dns:Zone")
    (record,) = result.of_type("azure-native:dns:RecordSet")
    assert zone.inputs["zoneName"] == "example.com"
    assert record.inputs["relativeRecordSetName"] == "app"
    assert record.inputs["aRecords"] == [{"ipv4Address": "203.0.113.10"}]
    assert result.of_type("azure-native:trafficmanager:Profile") == []
    assert result.values["health_check_id"] is None
    assert result.values["record"] == "app.example.com"
