"""Replication wiring: every backup bucket is replicated (or is a replica) through a role scoped to the backups,
and every vault storage account replicates to a second region."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._shared import (
    IAM_ATTACHMENT,
    IAM_POLICY,
    IAM_ROLE,
    IAM_ROLE_POLICY,
    KMS_KEY,
    S3_BUCKETS,
    S3_REPLICATIONS,
    STORAGE_ACCOUNT,
    Stack,
    as_list,
    dig,
    document,
    literal,
    optional,
    points_at,
    refs,
)

S3_PRINCIPAL = "s3.amazonaws.com"
AWS_MANAGED_POLICY = "arn:aws:iam::aws:policy/"
# Geo-redundant SKUs copy every blob to the paired region; LRS and ZRS stay in one region.
GEO_REDUNDANT_SKUS = {"Standard_GRS", "Standard_RAGRS", "Standard_GZRS", "Standard_RAGZRS"}


def _trusts_s3(role: PolicyResource) -> bool:
    trust = document(role.props.get("assumeRolePolicy"))
    return any(
        S3_PRINCIPAL in as_list(dig(statement, "Principal", "Service"))
        for statement in as_list(trust.get("Statement"))
        if isinstance(statement, Mapping)
    )


def _documents_of(stack: Stack, role: PolicyResource) -> Iterator[tuple[str, Any]]:
    """Every permission document the role carries: inline, role policies, and attached managed policies."""
    for inline in as_list(optional(role.props, "inlinePolicies")):
        yield f"{role.name} inline policy", dig(inline, "policy")
    for policy in stack.pointing_at((IAM_ROLE_POLICY,), "role", role):
        yield policy.name, policy.props.get("policy")
    for attachment in stack.pointing_at((IAM_ATTACHMENT,), "role", role):
        for policy in stack.of_type(IAM_POLICY):
            if points_at(attachment, "policyArn", policy):
                yield policy.name, policy.props.get("policy")
        if str(literal(attachment, "policyArn") or "").startswith(AWS_MANAGED_POLICY):
            # AWS-managed policies are not in the stack to read; none of them is scoped to our buckets.
            yield attachment.name, {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _role_problems(stack: Stack, role: PolicyResource, allowed: set[str]) -> Iterator[str]:
    documents = list(_documents_of(stack, role))
    if not documents:
        yield f"replication role {role.name} has no policy to inspect"
    for source, text in documents:
        for statement in as_list(document(text).get("Statement")):
            if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
                continue
            if any(a in ("*", "s3:*") for a in as_list(statement.get("Action"))):
                yield f"replication role {role.name} ({source}) allows every action"
            for resource in as_list(statement.get("Resource")):
                if resource not in allowed:
                    yield (
                        f"replication role {role.name} ({source}) grants {resource!r}, "
                        "which is not one of this stack's backup buckets or keys"
                    )


def _destinations(config: PolicyResource, buckets: list[PolicyResource], sources: set[str]) -> set[str]:
    """URNs of this stack's buckets the configuration's rules replicate into."""
    made_from = config.property_dependencies.get("rules")
    if made_from:
        return {r.urn for r in made_from if r.urn not in sources and any(r.urn == b.urn for b in buckets)}
    named = {dig(rule, "destination", "bucket") for rule in as_list(config.props.get("rules"))}
    return {b.urn for b in buckets if named & refs(b)}


def check_replication(args: StackValidationArgs, report: ReportViolation) -> None:
    stack = Stack(args.resources)
    buckets = stack.of_type(*S3_BUCKETS)
    replicators = [role for role in stack.of_type(IAM_ROLE) if _trusts_s3(role)]
    wired: set[str] = set()
    for config in stack.of_type(*S3_REPLICATIONS):
        sources = {b.urn for b in buckets if points_at(config, "bucket", b)}
        destinations = _destinations(config, buckets, sources)
        wired |= sources | destinations
        if not sources:
            report(f"replication configuration {config.name} replicates no bucket of this stack", config.urn)
        if not destinations:
            report(f"replication configuration {config.name} replicates into no bucket of this stack", config.urn)
        if not any(points_at(config, "role", role) for role in replicators):
            report(
                f"replication configuration {config.name} does not use a role of this stack S3 can assume", config.urn
            )
        rules = as_list(config.props.get("rules"))
        if not rules or any(dig(rule, "status") != "Enabled" for rule in rules):
            report(f"replication configuration {config.name} has no rules or a disabled one", config.urn)
    for bucket in buckets:
        if bucket.urn not in wired:
            report(f"S3 bucket {bucket.name} is neither replicated nor a replica", bucket.urn)
    bucket_arns = {arn for arn in (b.props.get("arn") for b in buckets) if isinstance(arn, str)}
    key_arns = {arn for arn in (k.props.get("arn") for k in stack.of_type(KMS_KEY)) if isinstance(arn, str)}
    allowed = bucket_arns | {f"{arn}/*" for arn in bucket_arns} | key_arns
    for role in replicators:
        for problem in _role_problems(stack, role, allowed):
            report(problem, role.urn)
    for account in stack.of_type(STORAGE_ACCOUNT):
        sku = dig(account.props, "sku", "name")
        if sku not in GEO_REDUNDANT_SKUS:
            report(f"storage account {account.name} ({sku}) does not replicate to a second region", account.urn)


REPLICATION = StackValidationPolicy(
    name="replication-wiring",
    description=(
        "Every S3 backup bucket replicates (or is the replica) through a role S3 assumes that reaches only this "
        "stack's backup buckets and keys; every vault storage account is geo-redundant."
    ),
    validate=check_replication,
)
