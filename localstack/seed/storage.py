"""The estate's buckets (backups, replica, application data), their replication, and the Azurite vault."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceExistsError
from botocore.exceptions import ClientError

from localstack.seed.clients import error_code
from localstack.seed.errors import SeedError
from stacks.config import StackConfig

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient
    from mypy_boto3_s3 import S3Client


def ensure_bucket(s3: S3Client, name: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as err:
        if error_code(err) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    else:
        return
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)  # us-east-1 rejects an explicit location constraint
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]


def encrypt_and_close(s3: S3Client, name: str, algorithm: str, labels: Mapping[str, str]) -> None:
    """Default encryption on, public access off, and the estate's tags: every bucket the seeder owns gets these."""
    if algorithm != "AES256":
        # LocalStack's KMS emulation does not run in this lab; the lab stack config pins SSE-S3 for that reason.
        raise SeedError(f"drctl:storage.aws_encryption {algorithm!r}: the lab seeder supports only AES256 (SSE-S3)")
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in labels.items()]})


def protect_backup_bucket(s3: S3Client, name: str, config: StackConfig, labels: Mapping[str, str]) -> None:
    """Versioned and tiered like the stack's protected buckets: an overwritten backup is still recoverable."""
    storage = config.storage
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    encrypt_and_close(s3, name, storage.aws_encryption, labels)
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "tier-backups",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Transitions": [
                        {"Days": storage.ia_after_days, "StorageClass": "STANDARD_IA"},
                        {"Days": storage.glacier_after_days, "StorageClass": "GLACIER"},
                    ],
                    "NoncurrentVersionTransitions": [{"NoncurrentDays": 30, "StorageClass": "GLACIER"}],
                    "NoncurrentVersionExpiration": {"NoncurrentDays": storage.noncurrent_expire_days},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                }
            ]
        },
    )


def ensure_replication(s3: S3Client, source: str, replica: str, role_arn: str) -> None:
    # LocalStack stores the configuration but does not copy objects; on AWS this keeps the replica current.
    s3.put_bucket_replication(
        Bucket=source,
        ReplicationConfiguration={
            "Role": role_arn,
            "Rules": [
                {
                    "ID": "to-recovery-region",
                    "Status": "Enabled",
                    "Priority": 1,
                    "Filter": {"Prefix": ""},
                    "DeleteMarkerReplication": {"Status": "Enabled"},
                    "Destination": {"Bucket": f"arn:aws:s3:::{replica}"},
                }
            ],
        },
    )


def ensure_vault(service: BlobServiceClient, name: str) -> None:
    with contextlib.suppress(ResourceExistsError):  # a second run reuses the container
        service.create_container(name, metadata={"drctl_role": "vault"})
