"""Backup storage policies: versioned, encrypted, never public."""

from __future__ import annotations

from collections.abc import Sequence

from stacks.policy.model import RecordedResource, dig, of_type, pointing_at

S3_BUCKET = "aws:s3/bucket:Bucket"
S3_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
S3_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"

SSE_ALGORITHMS = {"aws:kms", "aws:kms:dsse", "AES256"}
PUBLIC_ACLS = {"public-read", "public-read-write", "authenticated-read"}
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def check_versioning(resources: Sequence[RecordedResource]) -> list[str]:
    problems = []
    for bucket in of_type(resources, S3_BUCKET):
        configs = pointing_at(resources, S3_VERSIONING, "bucket", bucket)
        if not any(dig(c.inputs, "versioningConfiguration", "status") == "Enabled" for c in configs):
            problems.append(f"S3 bucket {bucket.name} is not versioned")
    for account in of_type(resources, STORAGE_ACCOUNT):
        services = pointing_at(resources, BLOB_SERVICE, "accountName", account)
        if not any(s.inputs.get("isVersioningEnabled") is True for s in services):
            problems.append(f"storage account {account.name} has no blob versioning")
        if not any(dig(s.inputs, "deleteRetentionPolicy", "enabled") is True for s in services):
            problems.append(f"storage account {account.name} has no blob soft delete")
    return problems


def check_encryption(resources: Sequence[RecordedResource]) -> list[str]:
    problems = []
    for bucket in of_type(resources, S3_BUCKET):
        configs = pointing_at(resources, S3_ENCRYPTION, "bucket", bucket)
        algorithms = {
            dig(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
            for c in configs
            for rule in c.inputs.get("rules") or []
        }
        if not algorithms & SSE_ALGORITHMS:
            problems.append(f"S3 bucket {bucket.name} has no default server-side encryption")
    for account in of_type(resources, STORAGE_ACCOUNT):
        inputs = account.inputs
        if dig(inputs, "encryption", "services", "blob", "enabled") is not True or not dig(
            inputs, "encryption", "keySource"
        ):
            problems.append(f"storage account {account.name} does not declare blob encryption")
        if inputs.get("enableHttpsTrafficOnly") is not True:
            problems.append(f"storage account {account.name} accepts plain HTTP")
        if inputs.get("minimumTlsVersion") != "TLS1_2":
            problems.append(f"storage account {account.name} accepts TLS older than 1.2")
    return problems


def check_public_access(resources: Sequence[RecordedResource]) -> list[str]:
    problems = []
    for bucket in of_type(resources, S3_BUCKET):
        blocks = pointing_at(resources, S3_PUBLIC_ACCESS_BLOCK, "bucket", bucket)
        if not any(all(b.inputs.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS) for b in blocks):
            problems.append(f"S3 bucket {bucket.name} lacks a public access block with all four settings on")
        if bucket.inputs.get("acl") in PUBLIC_ACLS:
            problems.append(f"S3 bucket {bucket.name} has public ACL {bucket.inputs['acl']}")
    for account in of_type(resources, STORAGE_ACCOUNT):
        if account.inputs.get("allowBlobPublicAccess") is not False:
            problems.append(f"storage account {account.name} allows public blob access")
    for container in of_type(resources, BLOB_CONTAINER):
        if container.inputs.get("publicAccess") not in (None, "None"):
            problems.append(f"blob container {container.name} is public ({container.inputs['publicAccess']})")
    return problems
