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

from orchestrator.drill.scope import TAG_RUN
from orchestrator.permissions import DRILL_TAG_PREFIX, EVENT_QUEUE_PREFIX, Scope, actions_by_scope
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
        ).apply(
            lambda v: json.dumps(
                orchestrator_policy(
                    account_id=v[0],
                    region=cloud.recovery_region,
                    stack=cloud.stack,
                    bucket_arns=[a for a in v[1] if a],
                    kms_key_arns=v[2],
                    hosted_zone_ids=v[3],
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
    manage_ec2: bool,
) -> dict[str, Any]:
    """The orchestrator's IAM policy: the actions drctl's code declares (``orchestrator.permissions``), each
    scope turned into this stack's resources. ``Resource: "*"`` appears only for actions AWS cannot scope."""
    ec2 = f"arn:aws:ec2:{region}:{account_id}"
    images = [f"arn:aws:ec2:{region}::image/*", f"{ec2}:image/*"]
    made_by_launch = [f"{ec2}:instance/*", f"{ec2}:volume/*", f"{ec2}:network-interface/*"]
    zones = [f"arn:aws:route53:::hostedzone/{z}" for z in hosted_zone_ids]
    scoped: dict[Scope, tuple[list[str], dict[str, Any] | None]] = {
        Scope.BACKUP_BUCKET: (list(bucket_arns), None),
        Scope.BACKUP_OBJECT: ([f"{arn}/*" for arn in bucket_arns], None),
        Scope.BACKUP_KEY: (list(kms_key_arns), None),
        # ``drctl protect``'s queues carry a bucket's events, so there are none without a bucket.
        Scope.EVENT_QUEUE: ([f"arn:aws:sqs:*:{account_id}:{EVENT_QUEUE_PREFIX}*"] if bucket_arns else [], None),
        Scope.HOSTED_ZONE: (zones, None),
        Scope.DNS_CHANGE: (["arn:aws:route53:::change/*"] if zones else [], None),
        # Route53's list actions take no resource; the zone found is still only changeable if it is one above.
        Scope.DNS_LOOKUP: (["*"] if zones else [], None),
        Scope.EC2_READ: (["*"], None),
        Scope.STACK_INSTANCE: ([f"{ec2}:instance/*"], {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": stack}}),
        Scope.LAUNCH: (
            [
                *made_by_launch,
                f"{ec2}:subnet/*",
                f"{ec2}:security-group/*",
                f"{ec2}:launch-template/*",
                *images,
            ],
            None,
        ),
        # Tags only in the call that makes the resource: without this condition the role could tag any instance
        # with this stack's tag and so satisfy StandbyLifecycle's condition on it.
        Scope.TAG_ON_CREATE: (
            [*made_by_launch, *images],
            {"StringEquals": {"ec2:CreateAction": ["RunInstances", "CopyImage"]}},
        ),
        Scope.IMAGE_COPY: (images[:1], None),
        # Re-tagging a drill's image copy (which its copy call already tagged with the run), with the drill's
        # own tag keys: an image without the run tag cannot be given one, so it can never become deregistrable.
        Scope.DRILL_IMAGE_TAGS: (
            images,
            {
                "Null": {f"aws:ResourceTag/{TAG_RUN}": "false"},
                "ForAllValues:StringLike": {"aws:TagKeys": [f"{DRILL_TAG_PREFIX}*"]},
            },
        ),
        Scope.DRILL_IMAGE: (images, {"Null": {f"aws:ResourceTag/{TAG_RUN}": "false"}}),
    }
    statements: list[dict[str, Any]] = []
    for scope, actions in actions_by_scope(ec2=manage_ec2).items():
        resources, condition = scoped[scope]
        if resources:
            statement: dict[str, Any] = {
                "Sid": scope.value,
                "Effect": "Allow",
                "Action": list(actions),
                "Resource": resources,
            }
            if condition:
                statement["Condition"] = condition
            statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}
