"""EC2 network helpers, security groups, and the recovery and drill networks built with them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from localstack.seed.clients import error_code
from localstack.seed.errors import SeedError
from localstack.seed.outputs import NetworkIds
from stacks.components.network_types import carve
from stacks.config import StackConfig
from stacks.naming import tags

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import ResourceTypeType
    from mypy_boto3_ec2.type_defs import FilterTypeDef, IpPermissionTypeDef, TagSpecificationTypeDef

ANYWHERE = "0.0.0.0/0"


# --- EC2 helpers -------------------------------------------------------------------------------------------------


def tag_spec(kind: ResourceTypeType, name: str, labels: Mapping[str, str]) -> list[TagSpecificationTypeDef]:
    """Tags applied by the create call itself, so no resource ever exists untagged (and so unfindable)."""
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in {**labels, "Name": name}.items()]}]


def named(name: str, *extra: FilterTypeDef) -> list[FilterTypeDef]:
    return [{"Name": "tag:Name", "Values": [name]}, *extra]


def first_id(ids: Sequence[str]) -> str | None:
    # Should a crashed run have left two of something, every later run still picks the same one.
    return sorted(ids)[0] if ids else None


def ensure_vpc(ec2: EC2Client, name: str, cidr: str, labels: Mapping[str, str]) -> str:
    found = first_id([v["VpcId"] for v in ec2.describe_vpcs(Filters=named(name))["Vpcs"]])
    if found is None:
        found = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=tag_spec("vpc", name, labels))["Vpc"]["VpcId"]
    # Private hosted zones resolve only in VPCs with DNS support and host names on.
    ec2.modify_vpc_attribute(VpcId=found, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=found, EnableDnsHostnames={"Value": True})
    return found


def ensure_subnet(ec2: EC2Client, name: str, vpc_id: str, cidr: str, zone: str, labels: Mapping[str, str]) -> str:
    vpc_filter: FilterTypeDef = {"Name": "vpc-id", "Values": [vpc_id]}
    found = first_id([s["SubnetId"] for s in ec2.describe_subnets(Filters=named(name, vpc_filter))["Subnets"]])
    if found is not None:
        return found
    subnet = ec2.create_subnet(
        VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=tag_spec("subnet", name, labels)
    )
    return subnet["Subnet"]["SubnetId"]


def ensure_internet_gateway(ec2: EC2Client, name: str, vpc_id: str, labels: Mapping[str, str]) -> str:
    gateways = ec2.describe_internet_gateways(Filters=named(name))["InternetGateways"]
    found = first_id([g["InternetGatewayId"] for g in gateways])
    if found is None:
        created = ec2.create_internet_gateway(TagSpecifications=tag_spec("internet-gateway", name, labels))
        found = created["InternetGateway"]["InternetGatewayId"]
        gateways = [created["InternetGateway"]]
    attached = {a["VpcId"] for g in gateways if g["InternetGatewayId"] == found for a in g.get("Attachments", [])}
    if vpc_id not in attached:
        ec2.attach_internet_gateway(InternetGatewayId=found, VpcId=vpc_id)
    return found


def ensure_route_table(ec2: EC2Client, name: str, vpc_id: str, labels: Mapping[str, str]) -> str:
    vpc_filter: FilterTypeDef = {"Name": "vpc-id", "Values": [vpc_id]}
    tables = ec2.describe_route_tables(Filters=named(name, vpc_filter))["RouteTables"]
    found = first_id([t["RouteTableId"] for t in tables])
    if found is not None:
        return found
    created = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=tag_spec("route-table", name, labels))
    return created["RouteTable"]["RouteTableId"]


def ensure_default_route(ec2: EC2Client, table_id: str, gateway_id: str) -> None:
    routes = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0].get("Routes", [])
    if not any(r.get("DestinationCidrBlock") == ANYWHERE for r in routes):
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock=ANYWHERE, GatewayId=gateway_id)


def ensure_association(ec2: EC2Client, table_id: str, subnet_id: str) -> None:
    # LocalStack accepts a second association of the same pair (AWS refuses it), so look before associating.
    by_subnet: FilterTypeDef = {"Name": "association.subnet-id", "Values": [subnet_id]}
    for table in ec2.describe_route_tables(Filters=[by_subnet])["RouteTables"]:
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId") != subnet_id:
                continue
            if table["RouteTableId"] == table_id:
                return
            # The subnet moved tables (a hand edit of the lab); put it back where the seeder wants it.
            ec2.replace_route_table_association(AssociationId=assoc["RouteTableAssociationId"], RouteTableId=table_id)
            return
    ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)


def ensure_security_group(ec2: EC2Client, name: str, vpc_id: str, description: str, labels: Mapping[str, str]) -> str:
    vpc_filter: FilterTypeDef = {"Name": "vpc-id", "Values": [vpc_id]}
    by_name: FilterTypeDef = {"Name": "group-name", "Values": [name]}
    groups = ec2.describe_security_groups(Filters=[vpc_filter, by_name])["SecurityGroups"]
    found = first_id([g["GroupId"] for g in groups])
    if found is not None:
        return found
    created = ec2.create_security_group(
        GroupName=name,
        VpcId=vpc_id,
        Description=description,
        TagSpecifications=tag_spec("security-group", name, labels),
    )
    return created["GroupId"]


def allow(authorize: Callable[..., Any], group_id: str, permission: IpPermissionTypeDef) -> None:
    """Authorize one rule; one rule per call, because AWS rejects a whole batch when any rule already exists."""
    try:
        authorize(GroupId=group_id, IpPermissions=[permission])
    except ClientError as err:
        if error_code(err) != "InvalidPermission.Duplicate":
            raise


def tcp(port: int, *, cidr: str | None = None, group: str | None = None, why: str) -> IpPermissionTypeDef:
    permission: IpPermissionTypeDef = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if cidr is not None:
        permission["IpRanges"] = [{"CidrIp": cidr, "Description": why}]
    if group is not None:
        permission["UserIdGroupPairs"] = [{"GroupId": group, "Description": why}]
    return permission


def restrict_egress(ec2: EC2Client, group_id: str, cidr: str) -> None:
    """Drill groups may only talk inside the drill VPC: swap the default allow-all egress for that CIDR."""
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    everything: IpPermissionTypeDef = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": ANYWHERE}]}
    has_default = any(
        p.get("IpProtocol") == "-1" and any(r.get("CidrIp") == ANYWHERE for r in p.get("IpRanges", []))
        for p in group.get("IpPermissionsEgress", [])
    )
    if has_default:
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[everything])
    allow(ec2.authorize_security_group_egress, group_id, {"IpProtocol": "-1", "IpRanges": [{"CidrIp": cidr}]})


def ensure_tier_groups(
    ec2: EC2Client, config: StackConfig, vpc_id: str, name: str, role: str, labels: Mapping[str, str], internet: str
) -> dict[str, str]:
    """A group per tier with the rules of ``stacks/components/network_aws.py``: tier port, admin port, egress."""
    groups = {
        t.name: ensure_security_group(
            ec2, f"{name}-{t.name}", vpc_id, f"drctl {role} {t.name} tier", tags(labels, role, t.name)
        )
        for t in config.tiers
    }
    for tier in config.tiers:
        group = groups[tier.name]
        if tier.ingress_from == "internet":
            rule = tcp(tier.port, cidr=internet, why=f"{tier.name} traffic")
        else:
            rule = tcp(tier.port, group=groups[tier.ingress_from], why=f"from {tier.ingress_from}")
        allow(ec2.authorize_security_group_ingress, group, rule)
        for cidr in config.network.admin_cidrs:
            allow(ec2.authorize_security_group_ingress, group, tcp(tier.admin_port, cidr=cidr, why="administration"))
        if role == "drill":
            restrict_egress(ec2, group, internet)
    return groups


def availability_zones(ec2: EC2Client, count: int) -> list[str]:
    zones = sorted(
        z["ZoneName"]
        for z in ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])[
            "AvailabilityZones"
        ]
    )
    if not zones:
        raise SeedError("the recovery region reports no available availability zones")
    # Wraps around when a region has fewer zones than az_count, as the stack does.
    return [zones[i % len(zones)] for i in range(count)]


# --- networks ----------------------------------------------------------------------------------------------------


def ensure_recovery_network(ec2: EC2Client, config: StackConfig, prefix: str, base: Mapping[str, str]) -> NetworkIds:
    """Public subnets behind an internet gateway for failover front ends; private ones for the standby hosts."""
    name, labels, net = f"{prefix}-recovery", tags(base, "recovery"), config.network
    vpc = ensure_vpc(ec2, name, net.recovery_cidr, labels)
    zones = availability_zones(ec2, net.az_count)
    public_cidrs, private_cidrs = carve(net.recovery_cidr, net.az_count)
    gateway = ensure_internet_gateway(ec2, name, vpc, labels)
    public_table = ensure_route_table(ec2, f"{name}-public", vpc, labels)
    ensure_default_route(ec2, public_table, gateway)
    # Private subnets get no default route: standby hosts need nothing from the internet until failover.
    private_table = ensure_route_table(ec2, f"{name}-private", vpc, labels)
    public = [
        ensure_subnet(ec2, f"{name}-public-{i}", vpc, cidr, zones[i], labels) for i, cidr in enumerate(public_cidrs)
    ]
    private = [
        ensure_subnet(ec2, f"{name}-private-{i}", vpc, cidr, zones[i], labels) for i, cidr in enumerate(private_cidrs)
    ]
    for subnet in public:
        ensure_association(ec2, public_table, subnet)
    for subnet in private:
        ensure_association(ec2, private_table, subnet)
    groups = ensure_tier_groups(ec2, config, vpc, name, "recovery", base, internet=ANYWHERE)
    return NetworkIds(vpc, private, groups, public)


def ensure_drill_network(ec2: EC2Client, config: StackConfig, prefix: str, base: Mapping[str, str]) -> NetworkIds:
    """No internet gateway, NAT or peering: the drill VPC's only route is ``local``."""
    name, labels, net = f"{prefix}-drill", tags(base, "drill"), config.network
    vpc = ensure_vpc(ec2, name, net.drill_cidr, labels)
    zones = availability_zones(ec2, net.az_count)
    _, private_cidrs = carve(net.drill_cidr, net.az_count)
    table = ensure_route_table(ec2, name, vpc, labels)
    private = [ensure_subnet(ec2, f"{name}-{i}", vpc, cidr, zones[i], labels) for i, cidr in enumerate(private_cidrs)]
    for subnet in private:
        ensure_association(ec2, table, subnet)
    # Drill copies of internet-facing tiers only accept traffic from inside the drill VPC.
    groups = ensure_tier_groups(ec2, config, vpc, name, "drill", base, internet=net.drill_cidr)
    return NetworkIds(vpc, private, groups, [])
