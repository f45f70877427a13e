"""AWS side of :class:`ReplicatedBackupStorage`: two protected buckets and the replication between them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stacks.components.protection import guarded
from stacks.config import ProtectionConfig, StorageConfig
from stacks.naming import Tags, tags
from stacks.providers import on


@dataclass(frozen=True)
class ProtectedBucket:
    bucket: aws.s3.Bucket
    key: aws.kms.Key | None
    versioning: aws.s3.BucketVersioning


@dataclass(frozen=True)
class BucketPair:
    source: ProtectedBucket
    replica: ProtectedBucket

    @property
    def key_arns(self) -> pulumi.Output[list[str]]:
        return pulumi.Output.all(*[b.key.arn for b in (self.source, self.replica) if b.key is not None])


def replicated_buckets(
    name: str,
    parent: pulumi.Resource,
    settings: StorageConfig,
    base: Tags,
    primary: aws.Provider,
    recovery: aws.Provider,
    protection: ProtectionConfig,
) -> BucketPair:
    """A source bucket in the primary region replicating every object version to a bucket in the recovery one."""
    source = protected_bucket(f"{name}-primary", parent, settings, base, primary, protection)
    replica = protected_bucket(f"{name}-replica", parent, settings, base, recovery, protection)
    role = aws.iam.Role(
        f"{name}-replication",
        description="S3 replication of drctl backups to the recovery region",
        assume_role_policy=json.dumps(_trust("s3.amazonaws.com")),
        tags=tags(base, "replication"),
        opts=on(primary, parent),
    )
    aws.iam.RolePolicy(
        f"{name}-replication",
        role=role.id,
        policy=pulumi.Output.all(
            source.bucket.arn,
            replica.bucket.arn,
            source.key.arn if source.key else None,
            replica.key.arn if replica.key else None,
        ).apply(lambda a: json.dumps(replication_policy(a[0], a[1], a[2], a[3]))),
        opts=on(primary, parent),
    )
    aws.s3.BucketReplicationConfig(
        f"{name}-replication",
        bucket=source.bucket.id,
        role=role.arn,
        rules=[_replication_rule(replica)],
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=primary,
            # S3 refuses a replication configuration until both sides are versioned.
            depends_on=[source.versioning, replica.versioning],
        ),
    )
    return BucketPair(source, replica)


def protected_bucket(
    name: str,
    parent: pulumi.Resource,
    settings: StorageConfig,
    base: Tags,
    provider: aws.Provider,
    protection: ProtectionConfig,
) -> ProtectedBucket:
    """Versioned, encrypted, never public, tiered to cheaper storage, optionally object-locked.

    The bucket and its key are guarded by ``protection``, and so are the settings that keep it safe
    (versioning, encryption, public access block, object lock): deleting one of those suspends versioning or
    opens the bucket, so a bucket retained by `pulumi destroy` must keep them too.
    """
    opts = on(provider, parent)
    guard = guarded(opts, protection)
    locked = settings.object_lock_days > 0
    bucket = aws.s3.Bucket(name, object_lock_enabled=locked, tags=tags(base, "backup"), opts=guard)
    key = None
    if settings.aws_encryption == "aws:kms":
        key = aws.kms.Key(
            name,
            description=f"drctl backups in {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags(base, "backup"),
            opts=guard,
        )
    versioning = aws.s3.BucketVersioning(
        name,
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=guard,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm=settings.aws_encryption,
                    kms_master_key_id=key.arn if key else None,
                ),
                bucket_key_enabled=key is not None,
            )
        ],
        opts=guard,
    )
    aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=guard,
    )
    aws.s3.BucketLifecycleConfiguration(name, bucket=bucket.id, rules=[_lifecycle_rule(settings)], opts=opts)
    if locked:
        aws.s3.BucketObjectLockConfiguration(
            name,
            bucket=bucket.id,
            rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                    # COMPLIANCE: not even the account root can shorten retention, unlike GOVERNANCE.
                    mode="COMPLIANCE",
                    days=settings.object_lock_days,
                )
            ),
            opts=pulumi.ResourceOptions.merge(guard, pulumi.ResourceOptions(depends_on=[versioning])),
        )
    return ProtectedBucket(bucket=bucket, key=key, versioning=versioning)


def _trust(service: str) -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def replication_policy(
    source_arn: str, replica_arn: str, source_key_arn: str | None, replica_key_arn: str | None
) -> dict[str, object]:
    """The replication role's permissions: these two buckets (and their keys) and nothing else."""
    statements: list[dict[str, object]] = [
        {
            "Sid": "ReadSourceConfiguration",
            "Effect": "Allow",
            "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            "Resource": [source_arn],
        },
        {
            "Sid": "ReadSourceVersions",
            "Effect": "Allow",
            "Action": [
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
                "s3:GetObjectRetention",
                "s3:GetObjectLegalHold",
            ],
            "Resource": [f"{source_arn}/*"],
        },
        {
            "Sid": "WriteReplica",
            "Effect": "Allow",
            "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            "Resource": [f"{replica_arn}/*"],
        },
    ]
    if source_key_arn is not None:
        statements.append(
            {"Sid": "DecryptSource", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [source_key_arn]}
        )
    if replica_key_arn is not None:
        statements.append(
            {
                "Sid": "EncryptReplica",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": [replica_key_arn],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def _lifecycle_rule(settings: StorageConfig) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    # The days are checked against S3's ordering rules in stacks.config._lifecycle_problems.
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="tier-backups",
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        transitions=[
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                days=settings.ia_after_days, storage_class="STANDARD_IA"
            ),
            aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                days=settings.glacier_after_days, storage_class="GLACIER"
            ),
        ],
        noncurrent_version_transitions=[
            aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionTransitionArgs(
                noncurrent_days=settings.noncurrent_glacier_after_days, storage_class="GLACIER"
            )
        ],
        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=settings.noncurrent_expire_days
        ),
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=7
        ),
    )


def _replication_rule(replica: ProtectedBucket) -> aws.s3.BucketReplicationConfigRuleArgs:
    encrypted = replica.key is not None
    return aws.s3.BucketReplicationConfigRuleArgs(
        id="to-recovery-region",
        status="Enabled",
        filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
        delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(status="Enabled"),
        source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
            sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                status="Enabled"
            )
        )
        if encrypted
        else None,
        destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
            bucket=replica.bucket.arn,
            encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                replica_kms_key_id=replica.key.arn
            )
            if replica.key is not None
            else None,
        ),
    )
