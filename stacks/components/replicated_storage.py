"""Backup storage that survives the loss of a region: S3 with cross-region replication, Azure GRS blobs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from stacks.components import storage_aws, storage_azure
from stacks.config import ProtectionConfig, StorageConfig
from stacks.naming import Tags
from stacks.providers import AzureTarget

TYPE = "drctl:dr:ReplicatedBackupStorage"


@dataclass(frozen=True)
class AwsStorageArgs:
    primary: aws.Provider
    recovery: aws.Provider


@dataclass(frozen=True)
class ReplicatedBackupStorageArgs:
    name_prefix: str
    settings: StorageConfig
    tags: Tags
    aws: AwsStorageArgs | None = None
    # The vault account goes into this target's location; GRS/GZRS copies it to the paired region.
    azure: AzureTarget | None = None
    protection: ProtectionConfig = field(default_factory=ProtectionConfig)


class ReplicatedBackupStorage(pulumi.ComponentResource):
    """Versioned, encrypted, private backup storage with a copy in a second region.

    Outputs of a cloud the stack does not use resolve to ``None`` (or ``[]`` for ``kms_key_arns``).
    """

    bucket_name: pulumi.Output[str | None]
    bucket_arn: pulumi.Output[str | None]
    replica_bucket_name: pulumi.Output[str | None]
    replica_bucket_arn: pulumi.Output[str | None]
    kms_key_arns: pulumi.Output[list[str]]
    account_name: pulumi.Output[str | None]
    account_id: pulumi.Output[str | None]
    container_name: pulumi.Output[str | None]
    blob_endpoint: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: ReplicatedBackupStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        none: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        self.bucket_name = self.bucket_arn = self.replica_bucket_name = self.replica_bucket_arn = none
        self.account_name = self.account_id = self.container_name = self.blob_endpoint = none
        self.kms_key_arns = pulumi.Output.from_input([])
        if args.aws is not None:
            pair = storage_aws.replicated_buckets(
                name, self, args.settings, args.tags, args.aws.primary, args.aws.recovery, args.protection
            )
            self.bucket_name = pair.source.bucket.bucket
            self.bucket_arn = pair.source.bucket.arn
            self.replica_bucket_name = pair.replica.bucket.bucket
            self.replica_bucket_arn = pair.replica.bucket.arn
            self.kms_key_arns = pair.key_arns
        if args.azure is not None:
            vault = storage_azure.vault(
                name, self, args.name_prefix, args.settings, args.tags, args.azure, args.protection
            )
            self.account_name = vault.account_name
            self.account_id = vault.account_id
            self.container_name = vault.container_name
            self.blob_endpoint = vault.blob_endpoint
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "replica_bucket_name": self.replica_bucket_name,
                "replica_bucket_arn": self.replica_bucket_arn,
                "kms_key_arns": self.kms_key_arns,
                "account_name": self.account_name,
                "account_id": self.account_id,
                "container_name": self.container_name,
                "blob_endpoint": self.blob_endpoint,
            }
        )
