"""What the policies share: type tokens, tags, IAM documents, and how one resource points at another.

Resource policies see a resource's inputs, and stack policies see every resource's outputs (camelCase wire names
in both). During a preview, a value that is not yet known raises ``UnknownValueError`` when it is read, and Pulumi
then reports that the policy could not run yet. So links between resources are found through the engine's
property dependencies first, which are always known, and through values only when an input was a literal.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource
from pulumi_policy.proxy import UnknownValueError

# stacks.naming.ROLE_TAG, copied because the pack imports nothing from outside its directory; a test keeps them equal.
ROLE_TAG = "drctl:role"

# The deprecated V2 tokens are still accepted: state written by pulumi-aws 6 still carries them.
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_VERSIONINGS = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
S3_ENCRYPTIONS = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
S3_PUBLIC_ACCESS_BLOCKS = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
S3_ACLS = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
S3_REPLICATIONS = ("aws:s3/bucketReplicationConfig:BucketReplicationConfig",)
KMS_KEY = "aws:kms/key:Key"
IAM_ROLE = "aws:iam/role:Role"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
IAM_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"


def normalise(token: str) -> str:
    """``token`` without an azure-native API version (``azure-native:storage/v20230501:X`` is ``...storage:X``)."""
    if not token.startswith("azure-native:"):
        return token
    package, module, name = token.split(":", 2)
    return f"{package}:{module.split('/', 1)[0]}:{name}"


def is_type(token: str, *wanted: str) -> bool:
    return normalise(token) in wanted


def dig(value: Any, *path: str | int) -> Any:
    """``value[path[0]][path[1]]...``, or None as soon as a step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, Sequence) or isinstance(value, str) or step >= len(value):
                return None
            value = value[step]
        elif isinstance(value, Mapping):
            value = value.get(step)
        else:
            return None
    return value


def as_list(value: Any) -> list[Any]:
    """A JSON value that may be one item or several, as a list. Pulumi's proxies are Sequences, not lists."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


def document(value: Any) -> Mapping[str, Any]:
    """An IAM policy document given as JSON text or as an object; ``{}`` when it is neither."""
    if isinstance(value, Mapping):
        return value
    if not isinstance(value, str):
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, Mapping) else {}


def tag(props: Mapping[str, Any], key: str) -> str | None:
    value = dig(props, "tags", key)
    return value if isinstance(value, str) else None


def refs(resource: PolicyResource) -> set[str]:
    """Every value another resource's input may hold to name this one: its id, name, ARN or bucket name."""
    values = (resource.props.get(key) for key in ("id", "name", "arn", "bucket"))
    return {v for v in values if isinstance(v, str) and v}


def optional(props: Mapping[str, Any], key: str) -> Any:
    """``props[key]``, or None when it is absent or not yet known.

    Only for outputs the provider computes when the program leaves them unset (a bucket's inline ``acl``, a role's
    ``inlinePolicies``, a route table's ``routes``): in a preview of a new resource they are unknown, and
    "unknown" then means "not set by this program", which is what a policy would see once they are known.
    """
    try:
        return props.get(key)
    except UnknownValueError:
        return None


def literal(resource: PolicyResource, key: str) -> Any:
    """Input ``key`` when it came from no other resource (so it is known even in a preview), else None."""
    return None if resource.property_dependencies.get(key) else resource.props.get(key)


def points_at(resource: PolicyResource, key: str, target: PolicyResource) -> bool:
    """Whether ``resource``'s top-level input ``key`` was made from ``target``, or holds one of its names."""
    sources = resource.property_dependencies.get(key)
    if sources:
        return any(source.urn == target.urn for source in sources)
    value = resource.props.get(key)
    return isinstance(value, str) and value in refs(target)


class Stack:
    """The resources a stack validation sees, with the look-ups every stack policy makes."""

    def __init__(self, resources: Sequence[PolicyResource]) -> None:
        self.resources = resources

    def of_type(self, *tokens: str) -> list[PolicyResource]:
        return [r for r in self.resources if is_type(r.resource_type, *tokens)]

    def pointing_at(self, tokens: Collection[str], key: str, target: PolicyResource) -> list[PolicyResource]:
        """Resources of one of ``tokens`` whose input ``key`` points at ``target``."""
        return [r for r in self.of_type(*tokens) if points_at(r, key, target)]
