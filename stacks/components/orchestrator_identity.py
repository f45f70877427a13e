"""The identity drctl runs its runbooks as, allowed exactly what the runbooks do and nothing more."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_azure_native as azure_native

from stacks.naming import STACK_TAG, Tags, tags
from stacks.providers import invoke_on, on

TYPE = "drctl:dr:OrchestratorIdentity"

# Built-in Azure role definition ids; they are the same GUIDs in every tenant.
VIRTUAL_MACHINE_CONTRIBUTOR = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


@dataclass(frozen=True)
class AwsIdentityArgs:
    provider: aws.Provider
    recovery_region: str
    stack: str
    bucket_arns: Sequence[pulumi.Output[str | None]]
    kms_key_arns: pulumi.Output[list[str]]
    hosted_zone_ids: Sequence[pulumi.Output[str]]
    health_check_ids: Sequence[pulumi.Output[str | None]]
    # Only when the recovery site is on AWS does the orchestrator drive EC2 there.
    manage_ec2: bool
    trusted_principal: str | None = None


@dataclass(frozen=True)
class AzureIdentityArgs:
    provider: azure_native.Provider
    principal_id: str
    resource_group_id: pulumi.Output[str]
    storage_account_id: pulumi.Output[str | None]


@dataclass(frozen=True)
class OrchestratorIdentityArgs:
    tags: Tags
    aws: AwsIdentityArgs | None = None
    azure: AzureIdentityArgs | None = None


class OrchestratorIdentity(pulumi.ComponentResource):
    role_arn: pulumi.Output[str | None]
    policy_arn: pulumi.Output[str | None]
    role_assignment_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: OrchestratorIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        self.role_arn = self.policy_arn = pulumi.Output.from_input(None)
        self.role_assignment_ids = pulumi.Output.from_input([])
        if args.aws is not None:
            self._aws(name, args, args.aws)
        if args.azure is not None:
            self._azure(name, args.azure)
        self.register_outputs(
            {"role_arn": self.role_arn, "policy_arn": self.policy_arn, "role_assignment_ids": self.role_assignment_ids}
        )

    def _aws(self, name: str, args: OrchestratorIdentityArgs, cloud: AwsIdentityArgs) -> None:
        opts = on(cloud.provider, self)
        account = aws.get_caller_identity_output(opts=invoke_on(cloud.provider, self)).account_id
        principal = account.apply(lambda a: cloud.trusted_principal or f"arn:aws:iam::{a}:root")
        role = aws.iam.Role(
            f"{name}-orchestrator",
            description="drctl runbooks: failover, failback and drills",
            assume_role_policy=principal.apply(
                lambda p: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Principal": {"AWS": p}, "Action": "sts:AssumeRole"}],
                    }
                )
            ),
            tags=tags(args.tags, "orchestrator"),
            opts=opts,
        )
        document = pulumi.Output.all(
            account,
            pulumi.Output.all(*cloud.bucket_arns),
            cloud.kms_key_arns,
            pulumi.Output.all(*cloud.hosted_zone_ids),
            pulumi.Output.all(*cloud.health_check_ids),
        ).apply(
            lambda v: json.dumps(
                orchestrator_policy(
                    account_id=v[0],
                    region=cloud.recovery_region,
                    stack=cloud.stack,
                    bucket_arns=[a for a in v[1] if a],
                    kms_key_arns=v[2],
                    hosted_zone_ids=v[3],
                    health_check_ids=[h for h in v[4] if h],
                    manage_ec2=cloud.manage_ec2,
                )
            )
        )
        policy = aws.iam.Policy(
            f"{name}-orchestrator",
            description="Exactly the actions drctl runbooks perform",
            policy=document,
            tags=tags(args.tags, "orchestrator"),
            opts=opts,
        )
        aws.iam.RolePolicyAttachment(f"{name}-orchestrator", role=role.name, policy_arn=policy.arn, opts=opts)
        self.role_arn = role.arn
        self.policy_arn = policy.arn

    def _azure(self, name: str, cloud: AzureIdentityArgs) -> None:
        opts = on(cloud.provider, self)
        subscription = azure_native.authorization.get_client_config_output(
            opts=invoke_on(cloud.provider, self)
        ).subscription_id
        grants: list[tuple[str, str, pulumi.Output[str | None]]] = [
            ("vm", VIRTUAL_MACHINE_CONTRIBUTOR, cloud.resource_group_id),
            ("network", NETWORK_CONTRIBUTOR, cloud.resource_group_id),
            ("blobs", STORAGE_BLOB_DATA_CONTRIBUTOR, cloud.storage_account_id),
        ]
        ids: list[pulumi.Output[str]] = []
        for label, role, scope in grants:
            # Scoped to the DR resource group or the vault account, never the subscription.
            assignment = azure_native.authorization.RoleAssignment(
                f"{name}-{label}",
                principal_id=cloud.principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=subscription.apply(functools.partial(role_definition, role)),
                scope=scope.apply(_require_scope),
                opts=opts,
            )
            ids.append(assignment.id)
        self.role_assignment_ids = pulumi.Output.all(*ids)


def role_definition(role: str, subscription_id: str) -> str:
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def _require_scope(scope: str | None) -> str:
    if not scope:
        raise ValueError("an Azure role assignment needs a resource scope")
    return scope


def orchestrator_policy(
    *,
    account_id: str,
    region: str,
    stack: str,
    bucket_arns: Sequence[str],
    kms_key_arns: Sequence[str],
    hosted_zone_ids: Sequence[str],
    health_check_ids: Sequence[str],
    manage_ec2: bool,
) -> dict[str, Any]:
    """The orchestrator's IAM policy. ``Resource: "*"`` appears only for actions AWS cannot scope."""
    statements: list[dict[str, Any]] = []

    def allow(sid: str, actions: list[str], resources: list[str], condition: dict[str, Any] | None = None) -> None:
        if resources:
            statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
            if condition:
                statement["Condition"] = condition
            statements.append(statement)

    allow("BackupBuckets", ["s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketVersioning"], list(bucket_arns))
    allow(
        "BackupObjects",
        ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"],
        [f"{arn}/*" for arn in bucket_arns],
    )
    allow("BackupKeys", ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], list(kms_key_arns))
    allow(
        "FailoverRecords",
        ["route53:ChangeResourceRecordSets", "route53:GetHostedZone", "route53:ListResourceRecordSets"],
        [f"arn:aws:route53:::hostedzone/{z}" for z in hosted_zone_ids],
    )
    if hosted_zone_ids:
        # Change ids are minted per request, so they cannot be named in advance.
        allow("FailoverChanges", ["route53:GetChange"], ["arn:aws:route53:::change/*"])
    allow(
        "HealthChecks",
        ["route53:GetHealthCheck", "route53:GetHealthCheckStatus"],
        [f"arn:aws:route53:::healthcheck/{h}" for h in health_check_ids],
    )
    if manage_ec2:
        ec2 = f"arn:aws:ec2:{region}:{account_id}"
        allow(
            "StandbyLifecycle",
            ["ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances"],
            [f"{ec2}:instance/*"],
            {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": stack}},
        )
        allow(
            "LaunchRecovery",
            ["ec2:RunInstances", "ec2:CreateTags"],
            [
                f"{ec2}:instance/*",
                f"{ec2}:volume/*",
                f"{ec2}:network-interface/*",
                f"{ec2}:subnet/*",
                f"{ec2}:security-group/*",
                f"arn:aws:ec2:{region}::image/*",
                f"arn:aws:ec2:{region}:{account_id}:image/*",
            ],
        )
        allow("CopyImages", ["ec2:CopyImage"], [f"arn:aws:ec2:{region}::image/*"])
        allow(
            "Describe",
            [
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeImages",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeVpcs",
            ],
            # EC2 Describe* calls do not support resource-level permissions.
            ["*"],
        )
    return {"Version": "2012-10-17", "Statement": statements}
