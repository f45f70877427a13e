"""Network policies: no SSH/RDP from the internet, and a drill network with no way to production."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from stacks.policy.model import RecordedResource, dig, of_type, pointing_at

ADMIN_PORTS = (22, 3389)
ANYWHERE = {"0.0.0.0/0", "::/0", "*", "Internet", "Any", "any"}

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
NSG = "azure-native:network:NetworkSecurityGroup"
NSG_RULE = "azure-native:network:SecurityRule"

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
VNET = "azure-native:network:VirtualNetwork"
VNET_SUBNET = "azure-native:network:Subnet"
VNET_PEERING = "azure-native:network:VirtualNetworkPeering"
# Anything attached to a VPC by ``vpcId`` that can carry traffic out of it.
VPC_EXITS = {
    "aws:ec2/internetGateway:InternetGateway": "an internet gateway",
    "aws:ec2/internetGatewayAttachment:InternetGatewayAttachment": "an internet gateway",
    "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway": "an egress-only internet gateway",
    "aws:ec2/vpnGateway:VpnGateway": "a VPN gateway",
    "aws:ec2/vpnGatewayAttachment:VpnGatewayAttachment": "a VPN gateway",
    "aws:ec2transitgateway/vpcAttachment:VpcAttachment": "a transit gateway attachment",
}
PEERING_KEYS = {"aws:ec2/vpcPeeringConnection:VpcPeeringConnection": ("vpcId", "peerVpcId")}
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
ROUTE_TARGETS = (
    "gatewayId",
    "natGatewayId",
    "transitGatewayId",
    "vpcPeeringConnectionId",
    "egressOnlyGatewayId",
    "networkInterfaceId",
    "vpcEndpointId",
    "carrierGatewayId",
    "localGatewayId",
    "coreNetworkArn",
)


def _covers_admin_port(protocol: Any, low: Any, high: Any) -> bool:
    if str(protocol).lower() in ("-1", "all", "*"):
        return True
    if low is None or high is None:
        return False
    return any(int(low) <= port <= int(high) for port in ADMIN_PORTS)


def _azure_ports_cover_admin(rule: Mapping[str, Any]) -> bool:
    ranges = [rule.get("destinationPortRange"), *(rule.get("destinationPortRanges") or [])]
    for text in (str(r) for r in ranges if r is not None):
        if text == "*":
            return True
        low, _, high = text.partition("-")
        if _covers_admin_port("tcp", low, high or low):
            return True
    return False


def _azure_rule_opens_admin(rule: Mapping[str, Any]) -> bool:
    sources = {rule.get("sourceAddressPrefix"), *(rule.get("sourceAddressPrefixes") or [])}
    return (
        str(rule.get("direction", "")).lower() == "inbound"
        and str(rule.get("access", "")).lower() == "allow"
        and bool(sources & ANYWHERE)
        and _azure_ports_cover_admin(rule)
    )


def check_admin_ports(resources: Sequence[RecordedResource]) -> list[str]:
    problems = []
    for group in of_type(resources, SECURITY_GROUP):
        for rule in group.inputs.get("ingress") or []:
            cidrs = {*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])}
            if cidrs & ANYWHERE and _covers_admin_port(rule.get("protocol"), rule.get("fromPort"), rule.get("toPort")):
                problems.append(f"security group {group.name} opens SSH/RDP to the internet")
    for rule in of_type(resources, SECURITY_GROUP_RULE):
        i = rule.inputs
        cidrs = {*(i.get("cidrBlocks") or []), *(i.get("ipv6CidrBlocks") or [])}
        if (
            i.get("type") == "ingress"
            and cidrs & ANYWHERE
            and _covers_admin_port(i.get("protocol"), i.get("fromPort"), i.get("toPort"))
        ):
            problems.append(f"security group rule {rule.name} opens SSH/RDP to the internet")
    for rule in of_type(resources, INGRESS_RULE):
        i = rule.inputs
        if {i.get("cidrIpv4"), i.get("cidrIpv6")} & ANYWHERE and _covers_admin_port(
            i.get("ipProtocol"), i.get("fromPort"), i.get("toPort")
        ):
            problems.append(f"security group ingress rule {rule.name} opens SSH/RDP to the internet")
    for nsg in of_type(resources, NSG):
        if any(_azure_rule_opens_admin(rule) for rule in nsg.inputs.get("securityRules") or []):
            problems.append(f"network security group {nsg.name} opens SSH/RDP to the internet")
    for rule in of_type(resources, NSG_RULE):
        if _azure_rule_opens_admin(rule.inputs):
            problems.append(f"security rule {rule.name} opens SSH/RDP to the internet")
    return problems


def check_drill_isolation(resources: Sequence[RecordedResource]) -> list[str]:
    """Fails unless at least one drill network exists and none of them has a path out."""
    aws_drills = [v for v in of_type(resources, VPC) if v.role == "drill"]
    azure_drills = [v for v in of_type(resources, VNET) if v.role == "drill"]
    if not aws_drills and not azure_drills:
        return ["no drill network (a VPC or VNet tagged drctl:role=drill) is defined"]
    problems: list[str] = []
    for vpc in aws_drills:
        problems += _aws_drill_exits(resources, vpc)
    for vnet in azure_drills:
        problems += _azure_drill_exits(resources, vnet)
    return problems


def _aws_drill_exits(resources: Sequence[RecordedResource], vpc: RecordedResource) -> list[str]:
    problems = []
    for type_, what in VPC_EXITS.items():
        for exit_ in pointing_at(resources, type_, "vpcId", vpc):
            problems.append(f"drill VPC {vpc.name} has {what} ({exit_.name})")
    for type_, keys in PEERING_KEYS.items():
        for key in keys:
            for peering in pointing_at(resources, type_, key, vpc):
                problems.append(f"drill VPC {vpc.name} is peered ({peering.name})")
    subnets = pointing_at(resources, SUBNET, "vpcId", vpc)
    for subnet in subnets:
        for nat in pointing_at(resources, NAT_GATEWAY, "subnetId", subnet):
            problems.append(f"drill VPC {vpc.name} has a NAT gateway ({nat.name})")
    for table in pointing_at(resources, ROUTE_TABLE, "vpcId", vpc):
        if any(_has_target(route) for route in table.inputs.get("routes") or []):
            problems.append(f"drill VPC {vpc.name} route table {table.name} routes out of the VPC")
        for route in pointing_at(resources, ROUTE, "routeTableId", table):
            if _has_target(route.inputs):
                problems.append(f"drill VPC {vpc.name} route {route.name} routes out of the VPC")
    return problems


def _has_target(route: Mapping[str, Any]) -> bool:
    return any(route.get(key) for key in ROUTE_TARGETS)


def _azure_drill_exits(resources: Sequence[RecordedResource], vnet: RecordedResource) -> list[str]:
    problems = []
    if vnet.inputs.get("virtualNetworkPeerings"):
        problems.append(f"drill VNet {vnet.name} declares peerings")
    refs = vnet.refs()
    for peering in of_type(resources, VNET_PEERING):
        ends: Iterable[Any] = (
            peering.inputs.get("virtualNetworkName"),
            dig(peering.inputs, "remoteVirtualNetwork", "id"),
        )
        if refs & {e for e in ends if isinstance(e, str)}:
            problems.append(f"drill VNet {vnet.name} is peered ({peering.name})")
    for subnet in pointing_at(resources, VNET_SUBNET, "virtualNetworkName", vnet):
        if subnet.inputs.get("defaultOutboundAccess") is not False:
            problems.append(f"drill VNet {vnet.name} subnet {subnet.name} has default outbound internet access")
    return problems
