"""IAM policy: the S3 replication role may touch only this stack's backup buckets and keys."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from stacks.policy.model import RecordedResource, of_type, pointing_at
from stacks.policy.storage import S3_BUCKET

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
KMS_KEY = "aws:kms/key:Key"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _document(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        parsed = json.loads(text) if isinstance(text, str) else {}
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _trusts_s3(role: RecordedResource) -> bool:
    trust = _document(role.inputs.get("assumeRolePolicy"))
    return any(
        "s3.amazonaws.com" in _as_list((s.get("Principal") or {}).get("Service"))
        for s in _as_list(trust.get("Statement") or [])
        if isinstance(s, dict)
    )


def _documents_of(resources: Sequence[RecordedResource], role: RecordedResource) -> Iterator[tuple[str, Any]]:
    for inline in role.inputs.get("inlinePolicies") or []:
        yield f"{role.name} inline policy", inline.get("policy")
    for policy in pointing_at(resources, ROLE_POLICY, "role", role):
        yield policy.name, policy.inputs.get("policy")
    for attachment in pointing_at(resources, ATTACHMENT, "role", role):
        for policy in of_type(resources, MANAGED_POLICY):
            if attachment.inputs.get("policyArn") in policy.refs():
                yield policy.name, policy.inputs.get("policy")
        if str(attachment.inputs.get("policyArn", "")).startswith("arn:aws:iam::aws:policy/"):
            yield attachment.name, {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def check_replication_roles(resources: Sequence[RecordedResource]) -> list[str]:
    """Every role S3 can assume must list only this stack's bucket ARNs (and their ``/*``) and KMS keys."""
    buckets = {b.outputs.get("arn") for b in of_type(resources, S3_BUCKET)} - {None}
    keys = {k.outputs.get("arn") for k in of_type(resources, KMS_KEY)} - {None}
    allowed = buckets | {f"{arn}/*" for arn in buckets} | keys
    problems = []
    for role in (r for r in of_type(resources, ROLE) if _trusts_s3(r)):
        documents = list(_documents_of(resources, role))
        if not documents:
            problems.append(f"replication role {role.name} has no policy to inspect")
        for source, text in documents:
            for statement in _as_list(_document(text).get("Statement") or []):
                if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                    continue
                if any(a in ("*", "s3:*") for a in _as_list(statement.get("Action"))):
                    problems.append(f"replication role {role.name} ({source}) allows every action")
                for resource in _as_list(statement.get("Resource")):
                    if resource not in allowed:
                        problems.append(
                            f"replication role {role.name} ({source}) grants {resource!r}, "
                            "which is not one of this stack's backup buckets or keys"
                        )
    return problems
