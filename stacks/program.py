"""Wires the components together for one stack and returns the outputs runbooks read.

The returned mapping is the stack-outputs contract (``orchestrator/stack_outputs.py``): one entry per field,
``None`` where the field does not apply to this stack's clouds. Pulumi's Python SDK drops exports whose value
is ``None``, so `pulumi stack output --json` leaves those fields out and the contract defaults them to ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native as azure_native

from stacks.components.failover_network import AwsNetworkArgs, FailoverNetwork, FailoverNetworkArgs
from stacks.components.orchestrator_identity import (
    AwsIdentityArgs,
    AzureIdentityArgs,
    OrchestratorIdentity,
    OrchestratorIdentityArgs,
)
from stacks.components.protection import guarded
from stacks.components.replicated_storage import (
    AwsStorageArgs,
    ReplicatedBackupStorage,
    ReplicatedBackupStorageArgs,
)
from stacks.components.standby_compute import AwsComputeArgs, AzureComputeArgs, StandbyCompute, StandbyComputeArgs
from stacks.components.vm_images import AwsImagesArgs, AzureImagesArgs, VmImages, VmImagesArgs
from stacks.config import AwsConfig, AzureConfig, StackConfig
from stacks.naming import STACK_TAG, Tags
from stacks.providers import AwsProviders, AzureTarget, aws_providers, azure_provider

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class AwsSide:
    config: AwsConfig
    providers: AwsProviders


@dataclass(frozen=True)
class AzureSide:
    config: AzureConfig
    resource_group: azure_native.resources.ResourceGroup
    # The vault lives in the primary location; recovery networks, images and compute in the recovery one.
    primary: AzureTarget
    recovery: AzureTarget


@dataclass(frozen=True)
class Estate:
    storage: ReplicatedBackupStorage
    images: VmImages
    network: FailoverNetwork
    standby: StandbyCompute
    identity: OrchestratorIdentity


def build(config: StackConfig) -> dict[str, Any]:
    """Create every component for ``config`` and return the stack outputs, keyed by contract field."""
    tags: Tags = {STACK_TAG: config.stack, "drctl:managed-by": "pulumi"}
    aws = AwsSide(config.aws, aws_providers(config.aws)) if config.uses_aws and config.aws else None
    azure = _azure_side(config, tags)
    storage = _storage(config, aws, azure, tags)
    images = VmImages(f"{config.name_prefix}-images", _images_args(config, aws, azure, tags))
    network = _network(config, aws, azure, tags)
    standby = _standby(config, aws, azure, images, network, tags)
    identity = _identity(config, aws, azure, storage, network, tags)
    return outputs(config, aws, azure, Estate(storage, images, network, standby, identity))


def _azure_side(config: StackConfig, tags: Tags) -> AzureSide | None:
    if not (config.uses_azure and config.azure):
        return None
    provider = azure_provider(config.azure)
    group = azure_native.resources.ResourceGroup(
        f"{config.name_prefix}-dr",
        location=config.azure.location,
        tags=tags,
        # Deleting a resource group deletes everything in it, the retained backup vault included.
        opts=guarded(pulumi.ResourceOptions(provider=provider), config.protection),
    )
    return AzureSide(
        config=config.azure,
        resource_group=group,
        primary=AzureTarget(provider, group.name, config.azure.location),
        recovery=AzureTarget(provider, group.name, config.azure.recovery_location),
    )


def _storage(config: StackConfig, aws: AwsSide | None, azure: AzureSide | None, tags: Tags) -> ReplicatedBackupStorage:
    return ReplicatedBackupStorage(
        f"{config.name_prefix}-backups",
        ReplicatedBackupStorageArgs(
            name_prefix=config.name_prefix,
            settings=config.storage,
            tags=tags,
            aws=AwsStorageArgs(aws.providers.primary, aws.providers.recovery) if aws else None,
            azure=azure.primary if azure else None,
            protection=config.protection,
        ),
    )


def _images_args(config: StackConfig, aws: AwsSide | None, azure: AzureSide | None, tags: Tags) -> VmImagesArgs:
    images = config.images
    aws_args = azure_args = None
    if config.recovery_cloud == "aws" and aws:
        source_region = images.aws_source_region or aws.config.region
        aws_args = AwsImagesArgs(aws.providers.recovery, source_region, images.aws_source_amis)
    elif config.recovery_cloud == "azure" and azure:
        if images.azure_source_location is None:
            raise ValueError("config validation lets no Azure recovery through without images.azure_source_location")
        target = azure.recovery
        azure_args = AzureImagesArgs(
            target.provider,
            target.resource_group_name,
            target.location,
            images.azure_source_image_ids,
            source_location=images.azure_source_location,
            hyper_v_generations=images.azure_hyper_v_generations,
            replica_regions=images.azure_replica_regions,
        )
    return VmImagesArgs(config.name_prefix, config.tiers, tags, aws=aws_args, azure=azure_args)


def _network(config: StackConfig, aws: AwsSide | None, azure: AzureSide | None, tags: Tags) -> FailoverNetwork:
    return FailoverNetwork(
        f"{config.name_prefix}-net",
        FailoverNetworkArgs(
            name_prefix=config.name_prefix,
            recovery_cloud=config.recovery_cloud,
            tiers=config.tiers,
            network=config.network,
            dns=config.dns,
            tags=tags,
            aws=AwsNetworkArgs(aws.providers.recovery, aws.config.recovery_region, aws.providers.primary)
            if aws
            else None,
            azure=azure.recovery if azure else None,
        ),
    )


def _standby(
    config: StackConfig,
    aws: AwsSide | None,
    azure: AzureSide | None,
    images: VmImages,
    network: FailoverNetwork,
    tags: Tags,
) -> StandbyCompute:
    aws_args = azure_args = None
    if config.recovery_cloud == "aws" and aws:
        aws_args = AwsComputeArgs(aws.providers.recovery, config.compute.aws_mode)
    elif config.recovery_cloud == "azure" and azure:
        azure_args = AzureComputeArgs(
            azure.recovery, config.compute.azure_mode, azure.config.admin_username, azure.config.ssh_public_key
        )
    return StandbyCompute(
        f"{config.name_prefix}-standby",
        StandbyComputeArgs(
            tiers=config.tiers,
            image_ids=images.by_tier,
            subnet_ids=network.recovery.private_subnet_ids,
            security_group_ids=network.recovery.security_group_ids,
            tags=tags,
            aws=aws_args,
            azure=azure_args,
            root_device_names=images.root_device_names,
        ),
    )


def _identity(
    config: StackConfig,
    aws: AwsSide | None,
    azure: AzureSide | None,
    storage: ReplicatedBackupStorage,
    network: FailoverNetwork,
    tags: Tags,
) -> OrchestratorIdentity:
    route53 = config.dns.provider == "route53"
    zones = [network.production_dns.zone_id] if route53 else []
    if config.recovery_cloud == "aws":
        zones.append(network.drill_dns.zone_id)
    aws_args = (
        AwsIdentityArgs(
            provider=aws.providers.primary,
            recovery_region=aws.config.recovery_region,
            stack=config.stack,
            bucket_arns=[storage.bucket_arn, storage.replica_bucket_arn],
            kms_key_arns=storage.kms_key_arns,
            hosted_zone_ids=zones,
            manage_ec2=config.recovery_cloud == "aws",
            trusted_principal=aws.config.orchestrator_trusted_principal,
        )
        if aws
        else None
    )
    azure_args = (
        AzureIdentityArgs(
            provider=azure.primary.provider,
            principal_id=azure.config.orchestrator_principal_id,
            resource_group_id=azure.resource_group.id,
            storage_account_id=storage.account_id,
        )
        if azure
        else None
    )
    return OrchestratorIdentity(
        f"{config.name_prefix}-identity", OrchestratorIdentityArgs(tags=tags, aws=aws_args, azure=azure_args)
    )


def outputs(config: StackConfig, aws: AwsSide | None, azure: AzureSide | None, estate: Estate) -> dict[str, Any]:
    network, standby = estate.network, estate.standby
    return {
        "schema_version": SCHEMA_VERSION,
        "stack": config.stack,
        "primary_cloud": config.primary_cloud,
        "recovery_cloud": config.recovery_cloud,
        "primary_region": config.primary_region,
        "recovery_region": config.recovery_region,
        "backup_bucket": estate.storage.bucket_name,
        "backup_bucket_region": aws.config.region if aws else None,
        "backup_replica_bucket": estate.storage.replica_bucket_name,
        "backup_replica_region": aws.config.recovery_region if aws else None,
        "vault_account": estate.storage.account_name,
        "vault_container": estate.storage.container_name,
        "vault_blob_endpoint": estate.storage.blob_endpoint,
        "azure_resource_group": azure.resource_group.name if azure else None,
        "recovery_network_id": network.recovery.network_id,
        "recovery_subnet_ids": network.recovery.private_subnet_ids,
        "recovery_public_subnet_ids": network.recovery.public_subnet_ids,
        "security_group_ids": network.recovery.security_group_ids,
        "drill_network_id": network.drill.network_id,
        "drill_subnet_ids": network.drill.private_subnet_ids,
        "drill_security_group_ids": network.drill.security_group_ids,
        "image_ids": estate.images.image_ids,
        "standby_mode": standby.mode,
        "standby_tier_order": standby.tier_order,
        "standby_instance_ids": standby.instance_ids,
        "standby_template_ids": standby.template_ids,
        "dns_provider": config.dns.provider,
        "dns_zone_id": network.production_dns.zone_id,
        "production_record_name": network.production_dns.record_name,
        "health_check_id": network.production_dns.health_check_id,
        "drill_dns_zone_id": network.drill_dns.zone_id,
        "drill_record_name": network.drill_dns.record_name,
        "orchestrator_role_arn": estate.identity.role_arn,
    }
