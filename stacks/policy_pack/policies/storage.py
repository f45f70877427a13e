"""Backup storage: versioned, encrypted, never public."""

from __future__ import annotations

from pulumi_policy import ReportViolation, StackValidationArgs, StackValidationPolicy

from ._shared import (
    BLOB_CONTAINER,
    BLOB_SERVICE,
    S3_ACLS,
    S3_BUCKETS,
    S3_ENCRYPTIONS,
    S3_PUBLIC_ACCESS_BLOCKS,
    S3_VERSIONINGS,
    STORAGE_ACCOUNT,
    Stack,
    as_list,
    dig,
    optional,
)

SSE_ALGORITHMS = {"aws:kms", "aws:kms:dsse", "AES256"}
PUBLIC_ACLS = {"public-read", "public-read-write", "authenticated-read"}
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def check_versioning(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every S3 bucket has versioning Enabled; every storage account has blob versioning and soft delete."""
    stack = Stack(args.resources)
    for bucket in stack.of_type(*S3_BUCKETS):
        configs = stack.pointing_at(S3_VERSIONINGS, "bucket", bucket)
        if not any(dig(c.props, "versioningConfiguration", "status") == "Enabled" for c in configs):
            report(f"S3 bucket {bucket.name} is not versioned", bucket.urn)
    for account in stack.of_type(STORAGE_ACCOUNT):
        services = stack.pointing_at((BLOB_SERVICE,), "accountName", account)
        if not any(s.props.get("isVersioningEnabled") is True for s in services):
            report(f"storage account {account.name} has no blob versioning", account.urn)
        if not any(dig(s.props, "deleteRetentionPolicy", "enabled") is True for s in services):
            report(f"storage account {account.name} has no blob soft delete", account.urn)


def check_encryption(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every S3 bucket has default server-side encryption; every storage account encrypts blobs, HTTPS, TLS 1.2."""
    stack = Stack(args.resources)
    for bucket in stack.of_type(*S3_BUCKETS):
        algorithms = {
            dig(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
            for config in stack.pointing_at(S3_ENCRYPTIONS, "bucket", bucket)
            for rule in as_list(config.props.get("rules"))
        }
        if not algorithms & SSE_ALGORITHMS:
            report(f"S3 bucket {bucket.name} has no default server-side encryption", bucket.urn)
    for account in stack.of_type(STORAGE_ACCOUNT):
        props = account.props
        if dig(props, "encryption", "services", "blob", "enabled") is not True or not dig(
            props, "encryption", "keySource"
        ):
            report(f"storage account {account.name} does not declare blob encryption", account.urn)
        if props.get("enableHttpsTrafficOnly") is not True:
            report(f"storage account {account.name} accepts plain HTTP", account.urn)
        if props.get("minimumTlsVersion") != "TLS1_2":
            report(f"storage account {account.name} accepts TLS older than 1.2", account.urn)


def check_public_access(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every S3 bucket is fully blocked from public access and has no public ACL; no public Azure blobs."""
    stack = Stack(args.resources)
    for bucket in stack.of_type(*S3_BUCKETS):
        blocks = stack.pointing_at(S3_PUBLIC_ACCESS_BLOCKS, "bucket", bucket)
        if not any(all(b.props.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS) for b in blocks):
            report(f"S3 bucket {bucket.name} lacks a public access block with all four settings on", bucket.urn)
        acls = [
            optional(bucket.props, "acl"),
            *(a.props.get("acl") for a in stack.pointing_at(S3_ACLS, "bucket", bucket)),
        ]
        for acl in (a for a in acls if a in PUBLIC_ACLS):
            report(f"S3 bucket {bucket.name} has public ACL {acl}", bucket.urn)
    for account in stack.of_type(STORAGE_ACCOUNT):
        if account.props.get("allowBlobPublicAccess") is not False:
            report(f"storage account {account.name} allows public blob access", account.urn)
    for container in stack.of_type(BLOB_CONTAINER):
        access = container.props.get("publicAccess")
        if access not in (None, "None"):
            report(f"blob container {container.name} is public ({access})", container.urn)


VERSIONING = StackValidationPolicy(
    name="backup-versioning",
    description="Backup buckets and storage accounts keep every version of every object (and soft-delete blobs).",
    validate=check_versioning,
)
ENCRYPTION = StackValidationPolicy(
    name="backup-encryption",
    description="Backups are encrypted at rest (S3 default SSE, Azure blob encryption) and in transit (TLS 1.2).",
    validate=check_encryption,
)
PUBLIC_ACCESS = StackValidationPolicy(
    name="no-public-access",
    description="No backup bucket, storage account or container can be read by the public.",
    validate=check_public_access,
)
