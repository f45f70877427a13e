"""ReplicatedBackupStorage: protections on both S3 buckets, scoped replication, and a hardened Azure vault."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.components.replicated_storage import (
    AwsStorageArgs,
    ReplicatedBackupStorage,
    ReplicatedBackupStorageArgs,
)
from stacks.config import StorageConfig
from stacks.policy import Check
from stacks.policy.iam import check_replication_roles
from stacks.policy.storage import check_encryption, check_public_access, check_versioning
from tests.stacks.pulumi_harness import Run, run
from tests.stacks.samples import TAGS, aws_pair, azure_target

BUCKET = "aws:s3/bucket:Bucket"
KMS_KEY = "aws:kms/key:Key"
PRIMARY, REPLICA = "vault-primary", "vault-replica"


def _aws(settings: StorageConfig) -> Run:
    def program() -> dict[str, Any]:
        providers = aws_pair()
        storage = ReplicatedBackupStorage(
            "vault",
            ReplicatedBackupStorageArgs(
                name_prefix="drctl-test",
                settings=settings,
                tags=TAGS,
                aws=AwsStorageArgs(providers.primary, providers.recovery),
            ),
        )
        return {
            "bucket": storage.bucket_name,
            "bucket_arn": storage.bucket_arn,
            "replica": storage.replica_bucket_name,
            "account": storage.account_name,
            "keys": storage.kms_key_arns,
        }

    return run(program)


def _azure(settings: StorageConfig) -> Run:
    def program() -> dict[str, Any]:
        target = azure_target()
        storage = ReplicatedBackupStorage(
            "vault",
            ReplicatedBackupStorageArgs(
                name_prefix="drctl-test",
                settings=settings,
                tags=TAGS,
                azure=target,
            ),
        )
        return {
            "account": storage.account_name,
            "container": storage.container_name,
            "endpoint": storage.blob_endpoint,
            "bucket": storage.bucket_name,
        }

    return run(program)


def _for_bucket(result: Run, type_: str, bucket: str) -> dict[str, Any]:
    bucket_id = result.named(BUCKET, bucket).id
    matches = [r.inputs for r in result.of_type(type_) if r.inputs.get("bucket") == bucket_id]
    assert len(matches) == 1, f"{type_} for {bucket}: {matches}"
    return dict(matches[0])


@pytest.fixture(scope="module")
def kms_locked() -> Run:
    return _aws(StorageConfig(aws_encryption="aws:kms", object_lock_days=30))


def test_each_bucket_lives_in_its_own_region(kms_locked: Run) -> None:
    assert Run.provider_name(kms_locked.named(BUCKET, PRIMARY)) == "aws-primary"
    assert Run.provider_name(kms_locked.named(BUCKET, REPLICA)) == "aws-recovery"
    assert kms_locked.values["bucket"] == kms_locked.named(BUCKET, PRIMARY).id
    assert kms_locked.values["replica"] == kms_locked.named(BUCKET, REPLICA).id
    assert kms_locked.values["account"] is None


@pytest.mark.parametrize("bucket", [PRIMARY, REPLICA])
def test_both_buckets_are_versioned_encrypted_private_and_tiered(kms_locked: Run, bucket: str) -> None:
    versioning = _for_bucket(kms_locked, "aws:s3/bucketVersioning:BucketVersioning", bucket)
    assert versioning["versioningConfiguration"]["status"] == "Enabled"

    sse = _for_bucket(
        kms_locked,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        bucket,
    )
    default = sse["rules"][0]["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert default["kmsMasterKeyId"] == kms_locked.named(KMS_KEY, bucket).outputs["arn"]

    block = _for_bucket(kms_locked, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block[flag] is True, flag

    lifecycle = _for_bucket(kms_locked, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket)
    transitions = {(t["storageClass"], t["days"]) for t in lifecycle["rules"][0]["transitions"]}
    assert transitions == {("STANDARD_IA", 30), ("GLACIER", 90)}
    assert lifecycle["rules"][0]["noncurrentVersionExpiration"]["noncurrentDays"] == 365
    assert lifecycle["rules"][0]["noncurrentVersionTransitions"] == [{"noncurrentDays": 30, "storageClass": "GLACIER"}]


@pytest.mark.parametrize("bucket", [PRIMARY, REPLICA])
def test_object_lock_is_compliance_mode_with_the_configured_days(kms_locked: Run, bucket: str) -> None:
    assert kms_locked.named(BUCKET, bucket).inputs["objectLockEnabled"] is True
    lock = _for_bucket(kms_locked, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", bucket)
    assert lock["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 30}


def test_replication_sends_everything_to_the_replica_re_encrypted(kms_locked: Run) -> None:
    (config,) = kms_locked.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    (role,) = kms_locked.of_type("aws:iam/role:Role")
    rule = config.inputs["rules"][0]
    assert config.inputs["bucket"] == kms_locked.named(BUCKET, PRIMARY).id
    assert config.inputs["role"] == role.outputs["arn"]
    assert rule["status"] == "Enabled"
    assert rule["destination"]["bucket"] == kms_locked.named(BUCKET, REPLICA).outputs["arn"]
    replica_key = kms_locked.named(KMS_KEY, REPLICA).outputs["arn"]
    assert rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"] == replica_key
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"


def test_replication_role_names_exactly_the_two_buckets_and_their_keys(kms_locked: Run) -> None:
    (role,) = kms_locked.of_type("aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    (policy,) = kms_locked.of_type("aws:iam/rolePolicy:RolePolicy")
    assert policy.inputs["role"] == role.id
    resources = {r for s in json.loads(policy.inputs["policy"])["Statement"] for r in s["Resource"]}
    source = kms_locked.named(BUCKET, PRIMARY).outputs["arn"]
    replica = kms_locked.named(BUCKET, REPLICA).outputs["arn"]
    keys = {kms_locked.named(KMS_KEY, b).outputs["arn"] for b in (PRIMARY, REPLICA)}
    assert resources == {source, f"{source}/*", f"{replica}/*", *keys}
    assert check_replication_roles(kms_locked.resources) == []


@pytest.mark.parametrize("check", [check_versioning, check_encryption, check_public_access])
def test_storage_policies_pass_on_both_clouds(kms_locked: Run, check: Check) -> None:
    assert check(kms_locked.resources) == []
    assert check(_azure(StorageConfig(immutability_days=7)).resources) == []


def test_sse_s3_without_object_lock_creates_no_keys_or_locks() -> None:
    result = _aws(StorageConfig(aws_encryption="AES256", object_lock_days=0))
    assert result.of_type(KMS_KEY) == []
    assert result.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration") == []
    assert result.named(BUCKET, PRIMARY).inputs["objectLockEnabled"] is False
    sse = _for_bucket(
        result, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", REPLICA
    )
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    (config,) = result.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert "encryptionConfiguration" not in config.inputs["rules"][0]["destination"]
    assert result.values["keys"] == []


@pytest.mark.parametrize("sku", ["Standard_GRS", "Standard_RAGRS", "Standard_GZRS"])
def test_azure_vault_is_geo_redundant_encrypted_and_private(sku: Any) -> None:
    result = _azure(StorageConfig(azure_sku=sku, soft_delete_days=14, immutability_days=0))
    (account,) = result.of_type("azure-native:storage:StorageAccount")
    inputs = account.inputs
    assert inputs["kind"] == "StorageV2"
    assert inputs["sku"] == {"name": sku}
    assert inputs["enableHttpsTrafficOnly"] is True
    assert inputs["minimumTlsVersion"] == "TLS1_2"
    assert inputs["allowBlobPublicAccess"] is False
    assert inputs["encryption"]["services"]["blob"]["enabled"] is True
    assert inputs["encryption"]["keySource"] == "Microsoft.Storage"
    assert "immutableStorageWithVersioning" not in inputs
    assert len(account.name) <= 16


def test_azure_blob_service_keeps_versions_and_soft_deletes() -> None:
    result = _azure(StorageConfig(soft_delete_days=14))
    (service,) = result.of_type("azure-native:storage:BlobServiceProperties")
    (account,) = result.of_type("azure-native:storage:StorageAccount")
    assert service.inputs["accountName"] == account.outputs["name"]
    assert service.inputs["isVersioningEnabled"] is True
    assert service.inputs["deleteRetentionPolicy"] == {"enabled": True, "days": 14}
    assert service.inputs["containerDeleteRetentionPolicy"] == {"enabled": True, "days": 14}


def test_azure_backups_container_is_private_and_exported() -> None:
    result = _azure(StorageConfig())
    (container,) = result.of_type("azure-native:storage:BlobContainer")
    (account,) = result.of_type("azure-native:storage:StorageAccount")
    assert container.inputs["containerName"] == "backups"
    assert container.inputs["publicAccess"] == "None"
    assert result.values["container"] == "backups"
    assert result.values["account"] == account.outputs["name"]
    assert result.values["endpoint"] == f"https://{account.outputs['name']}.blob.core.windows.net/"
    assert result.values["bucket"] is None


def test_azure_immutability_policy_is_version_level_and_unlocked() -> None:
    result = _azure(StorageConfig(immutability_days=45))
    (account,) = result.of_type("azure-native:storage:StorageAccount")
    assert account.inputs["immutableStorageWithVersioning"] == {
        "enabled": True,
        "immutabilityPolicy": {"immutabilityPeriodSinceCreationInDays": 45, "state": "Unlocked"},
    }
