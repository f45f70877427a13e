"""Least privilege: no SSH or RDP from the internet, and IAM policies without wildcards.

A resource policy: every rule here reads one resource's own inputs, so it runs in a preview before the resource
exists (unless the input is made from another resource's outputs, as the orchestrator's policy document is; then it
runs in `pulumi up`, before the resource is created or updated).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._shared import IAM_POLICY, IAM_ROLE, IAM_ROLE_POLICY, as_list, document, normalise

ADMIN_PORTS = (22, 3389)
ANYWHERE = {"0.0.0.0/0", "::/0", "*", "Internet", "Any", "any"}

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
NSG = "azure-native:network:NetworkSecurityGroup"
NSG_RULE = "azure-native:network:SecurityRule"

# Actions AWS authorises only on Resource "*": they take no resource ARN (IAM's service authorization reference
# lists no resource type for them). `--policy-pack-config` can replace the list (key "unscopableActions").
UNSCOPABLE_ACTIONS = ("ec2:Describe*", "route53:ListHostedZones", "route53:ListHostedZonesByName")
CONFIG = "unscopableActions"


def _covers_admin_port(protocol: Any, low: Any, high: Any) -> bool:
    if str(protocol).lower() in ("-1", "all", "*"):
        return True
    if low is None or high is None:
        return False
    return any(int(low) <= port <= int(high) for port in ADMIN_PORTS)


def _azure_ports_cover_admin(rule: Mapping[str, Any]) -> bool:
    ranges = [rule.get("destinationPortRange"), *as_list(rule.get("destinationPortRanges"))]
    for text in (str(r) for r in ranges if r is not None):
        if text == "*":
            return True
        low, _, high = text.partition("-")
        if _covers_admin_port("tcp", low, high or low):
            return True
    return False


def _azure_rule_opens_admin(rule: Mapping[str, Any]) -> bool:
    sources = {rule.get("sourceAddressPrefix"), *as_list(rule.get("sourceAddressPrefixes"))}
    return (
        str(rule.get("direction", "")).lower() == "inbound"
        and str(rule.get("access", "")).lower() == "allow"
        and bool(sources & ANYWHERE)
        and _azure_ports_cover_admin(rule)
    )


def _aws_rule_opens_admin(rule: Mapping[str, Any]) -> bool:
    cidrs = {*as_list(rule.get("cidrBlocks")), *as_list(rule.get("ipv6CidrBlocks"))}
    return bool(cidrs & ANYWHERE) and _covers_admin_port(rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"))


def _admin_port_problems(type_: str, name: str, props: Mapping[str, Any]) -> Iterator[str]:
    if type_ == SECURITY_GROUP and any(_aws_rule_opens_admin(r) for r in as_list(props.get("ingress"))):
        yield f"security group {name} opens SSH/RDP to the internet"
    elif type_ == SECURITY_GROUP_RULE and props.get("type") == "ingress" and _aws_rule_opens_admin(props):
        yield f"security group rule {name} opens SSH/RDP to the internet"
    elif (
        type_ == INGRESS_RULE
        and {props.get("cidrIpv4"), props.get("cidrIpv6")} & ANYWHERE
        and _covers_admin_port(props.get("ipProtocol"), props.get("fromPort"), props.get("toPort"))
    ):
        yield f"security group ingress rule {name} opens SSH/RDP to the internet"
    elif type_ == NSG and any(_azure_rule_opens_admin(r) for r in as_list(props.get("securityRules"))):
        yield f"network security group {name} opens SSH/RDP to the internet"
    elif type_ == NSG_RULE and _azure_rule_opens_admin(props):
        yield f"security rule {name} opens SSH/RDP to the internet"


def _documents(type_: str, name: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if type_ == IAM_POLICY:
        yield f"IAM policy {name}", props.get("policy")
    elif type_ == IAM_ROLE_POLICY:
        yield f"role policy {name}", props.get("policy")
    elif type_ == IAM_ROLE:
        for inline in as_list(props.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                yield f"role {name} inline policy {inline.get('name')}", inline.get("policy")


def _unscopable(action: str, patterns: Sequence[str]) -> bool:
    # IAM matches action names case-insensitively.
    action = action.lower()
    return any(action.startswith(p.lower()[:-1]) if p.endswith("*") else action == p.lower() for p in patterns)


def statement_problems(statement: Any, unscopable: Sequence[str]) -> Iterator[str]:
    """What in one IAM statement grants more than named actions on named resources."""
    if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
        return
    if statement.get("NotAction") is not None:
        yield "allows every action but those in NotAction"
    if statement.get("NotResource") is not None:
        yield "allows every resource but those in NotResource"
    actions = [str(a) for a in as_list(statement.get("Action"))]
    for action in (a for a in actions if "*" in a):
        yield f"allows the wildcard action {action!r}"
    if "*" in as_list(statement.get("Resource")):
        scopable = [a for a in actions if "*" not in a and not _unscopable(a, unscopable)]
        if scopable:
            yield f"grants Resource '*' to {', '.join(scopable)}, which AWS can limit to named resources"


def check_least_privilege(args: ResourceValidationArgs, report: ReportViolation) -> None:
    type_ = normalise(args.resource_type)
    for problem in _admin_port_problems(type_, args.name, args.props):
        report(problem, args.urn)
    unscopable = [str(a) for a in as_list(args.get_config().get(CONFIG, UNSCOPABLE_ACTIONS))]
    for source, text in _documents(type_, args.name, args.props):
        for statement in as_list(document(text).get("Statement")):
            for problem in statement_problems(statement, unscopable):
                report(f"{source} {problem}", args.urn)


LEAST_PRIVILEGE = ResourceValidationPolicy(
    name="least-privilege",
    description=(
        "No security group or NSG opens SSH/RDP to the internet; IAM policies name their actions (no wildcards, "
        "no NotAction) and use Resource '*' only for actions AWS cannot scope."
    ),
    validate=check_least_privilege,
    config_schema=PolicyConfigSchema(
        properties={
            CONFIG: {
                "type": "array",
                "items": {"type": "string"},
                "default": list(UNSCOPABLE_ACTIONS),
                "description": "Actions allowed on Resource '*'; a trailing '*' matches a prefix.",
            }
        }
    ),
)
