"""Azure side of :class:`ReplicatedBackupStorage`: the vault storage account, its blob service and container."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native

from stacks.components.protection import guarded
from stacks.config import ProtectionConfig, StorageConfig
from stacks.naming import Tags, compact, tags
from stacks.providers import AzureTarget, on


@dataclass(frozen=True)
class Vault:
    account_name: pulumi.Output[str]
    account_id: pulumi.Output[str]
    container_name: pulumi.Output[str]
    blob_endpoint: pulumi.Output[str]


def vault(
    name: str,
    parent: pulumi.Resource,
    prefix: str,
    settings: StorageConfig,
    base: Tags,
    target: AzureTarget,
    protection: ProtectionConfig,
) -> Vault:
    """A geo-redundant StorageV2 account, HTTPS/TLS 1.2 only, with versioned, soft-deleted, private blobs.

    The account, its blob service settings (versioning, soft delete) and the container are guarded by
    ``protection``. Keys are Microsoft-managed, so there is no key vault to guard.
    """
    opts = on(target.provider, parent)
    guard = guarded(opts, protection)
    immutability = None
    if settings.immutability_days > 0:
        immutability = azure_native.storage.ImmutableStorageAccountArgs(
            enabled=True,
            immutability_policy=azure_native.storage.AccountImmutabilityPolicyPropertiesArgs(
                immutability_period_since_creation_in_days=settings.immutability_days,
                # Unlocked can still be shortened; locking is irreversible and left to an operator.
                state=azure_native.storage.AccountImmutabilityPolicyState.UNLOCKED,
            ),
        )
    account = azure_native.storage.StorageAccount(
        # Storage account names are 3-24 lower-case alphanumerics; the provider appends 8 characters.
        compact(f"{prefix}vault", 16),
        resource_group_name=target.resource_group_name,
        location=target.location,
        kind=azure_native.storage.Kind.STORAGE_V2,
        sku=azure_native.storage.SkuArgs(name=settings.azure_sku),
        enable_https_traffic_only=True,
        minimum_tls_version=azure_native.storage.MinimumTlsVersion.TLS1_2,
        allow_blob_public_access=False,
        encryption=azure_native.storage.EncryptionArgs(
            key_source=azure_native.storage.KeySource.MICROSOFT_STORAGE,
            require_infrastructure_encryption=True,
            services=azure_native.storage.EncryptionServicesArgs(
                blob=azure_native.storage.EncryptionServiceArgs(enabled=True, key_type="Account"),
                file=azure_native.storage.EncryptionServiceArgs(enabled=True, key_type="Account"),
            ),
        ),
        immutable_storage_with_versioning=immutability,
        tags=tags(base, "backup"),
        opts=guard,
    )
    retention = azure_native.storage.DeleteRetentionPolicyArgs(enabled=True, days=settings.soft_delete_days)
    service = azure_native.storage.BlobServiceProperties(
        f"{name}-blob-service",
        account_name=account.name,
        resource_group_name=target.resource_group_name,
        blob_services_name="default",
        is_versioning_enabled=True,
        delete_retention_policy=retention,
        container_delete_retention_policy=retention,
        opts=guard,
    )
    container = azure_native.storage.BlobContainer(
        f"{name}-container",
        account_name=account.name,
        resource_group_name=target.resource_group_name,
        container_name=settings.container_name,
        public_access=azure_native.storage.PublicAccess.NONE,
        opts=pulumi.ResourceOptions.merge(guard, pulumi.ResourceOptions(depends_on=[service])),
    )
    return Vault(
        account_name=account.name,
        account_id=account.id,
        container_name=container.name,
        blob_endpoint=account.primary_endpoints.blob,
    )
