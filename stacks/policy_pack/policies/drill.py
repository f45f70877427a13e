"""Drill isolation: a drill network exists, and nothing in it can reach production or the internet."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._shared import ROLE_TAG, Stack, as_list, dig, optional, points_at, refs, tag

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
VNET = "azure-native:network:VirtualNetwork"
VNET_SUBNET = "azure-native:network:Subnet"
VNET_PEERING = "azure-native:network:VirtualNetworkPeering"
DRILL = "drill"
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


def _has_target(route: object) -> bool:
    return any(dig(route, key) for key in ROUTE_TARGETS)


def _aws_exits(stack: Stack, vpc: PolicyResource) -> Iterator[str]:
    for type_, what in VPC_EXITS.items():
        for exit_ in stack.pointing_at((type_,), "vpcId", vpc):
            yield f"drill VPC {vpc.name} has {what} ({exit_.name})"
    for type_, keys in PEERING_KEYS.items():
        for key in keys:
            for peering in stack.pointing_at((type_,), key, vpc):
                yield f"drill VPC {vpc.name} is peered ({peering.name})"
    for subnet in stack.pointing_at((SUBNET,), "vpcId", vpc):
        for nat in stack.pointing_at((NAT_GATEWAY,), "subnetId", subnet):
            yield f"drill VPC {vpc.name} has a NAT gateway ({nat.name})"
    for table in stack.pointing_at((ROUTE_TABLE,), "vpcId", vpc):
        # A route table's inline routes are computed from its Route resources when the program sets none.
        if any(_has_target(route) for route in as_list(optional(table.props, "routes"))):
            yield f"drill VPC {vpc.name} route table {table.name} routes out of the VPC"
        for route in stack.pointing_at((ROUTE,), "routeTableId", table):
            if _has_target(route.props):
                yield f"drill VPC {vpc.name} route {route.name} routes out of the VPC"


def _azure_exits(stack: Stack, vnet: PolicyResource) -> Iterator[str]:
    if as_list(optional(vnet.props, "virtualNetworkPeerings")):
        yield f"drill VNet {vnet.name} declares peerings"
    for peering in stack.of_type(VNET_PEERING):
        remote = peering.property_dependencies.get("remoteVirtualNetwork")
        if (
            points_at(peering, "virtualNetworkName", vnet)
            or (remote and any(r.urn == vnet.urn for r in remote))
            or (not remote and dig(peering.props, "remoteVirtualNetwork", "id") in refs(vnet))
        ):
            yield f"drill VNet {vnet.name} is peered ({peering.name})"
    for subnet in stack.pointing_at((VNET_SUBNET,), "virtualNetworkName", vnet):
        if subnet.props.get("defaultOutboundAccess") is not False:
            yield f"drill VNet {vnet.name} subnet {subnet.name} has default outbound internet access"


def check_drill_isolation(args: StackValidationArgs, report: ReportViolation) -> None:
    """Fails unless at least one drill network exists and none of them has a path out."""
    stack = Stack(args.resources)
    aws_drills = [v for v in stack.of_type(VPC) if tag(v.props, ROLE_TAG) == DRILL]
    azure_drills = [v for v in stack.of_type(VNET) if tag(v.props, ROLE_TAG) == DRILL]
    if not aws_drills and not azure_drills:
        report(f"no drill network (a VPC or VNet tagged {ROLE_TAG}={DRILL}) is defined", None)
    for vpc in aws_drills:
        for problem in _aws_exits(stack, vpc):
            report(problem, vpc.urn)
    for vnet in azure_drills:
        for problem in _azure_exits(stack, vnet):
            report(problem, vnet.urn)


DRILL_ISOLATION = StackValidationPolicy(
    name="drill-isolation",
    description=(
        "A drill network exists, and it has no internet, NAT, VPN or transit gateway, no peering, no route out "
        "and no default outbound access."
    ),
    validate=check_drill_isolation,
)
