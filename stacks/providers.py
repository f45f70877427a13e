"""Explicit cloud providers, one per region, so no resource ever falls back to ambient defaults."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_azure_native as azure_native

from stacks.config import AwsConfig, AzureConfig

LOCALSTACK_CREDENTIAL = "test"


@dataclass(frozen=True)
class AzureTarget:
    """Where an Azure resource goes: through which provider, into which resource group and location."""

    provider: azure_native.Provider
    resource_group_name: pulumi.Input[str]
    location: str


@dataclass(frozen=True)
class AwsProviders:
    primary: aws.Provider
    recovery: aws.Provider


def aws_providers(config: AwsConfig) -> AwsProviders:
    return AwsProviders(
        primary=_aws_provider("aws-primary", config.region, config.localstack_endpoint),
        recovery=_aws_provider("aws-recovery", config.recovery_region, config.localstack_endpoint),
    )


def _aws_provider(name: str, region: str, localstack: str | None) -> aws.Provider:
    if localstack is None:
        # Credentials come from the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO, instance role).
        return aws.Provider(name, region=region)
    return aws.Provider(
        name,
        region=region,
        access_key=LOCALSTACK_CREDENTIAL,
        secret_key=LOCALSTACK_CREDENTIAL,
        skip_credentials_validation=True,
        skip_requesting_account_id=True,
        skip_metadata_api_check=True,
        s3_use_path_style=True,
        endpoints=[
            aws.ProviderEndpointArgs(
                s3=localstack,
                ec2=localstack,
                iam=localstack,
                route53=localstack,
                sts=localstack,
                kms=localstack,
            )
        ],
    )


def azure_provider(config: AzureConfig) -> azure_native.Provider:
    # Credentials come from `az login`, a managed identity or ARM_CLIENT_ID/ARM_CLIENT_SECRET/ARM_TENANT_ID.
    return azure_native.Provider(
        "azure",
        location=config.location,
        subscription_id=config.subscription_id,
    )


def on(provider: pulumi.ProviderResource, parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options for a child resource: owned by ``parent``, created through ``provider``."""
    return pulumi.ResourceOptions(parent=parent, provider=provider)


def invoke_on(provider: pulumi.ProviderResource, parent: pulumi.Resource) -> pulumi.InvokeOutputOptions:
    return pulumi.InvokeOutputOptions(parent=parent, provider=provider)
