"""OrchestratorIdentity: an IAM policy naming exactly the runbooks' actions, and narrowly scoped Azure roles."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from stacks.components.orchestrator_identity import (
    NETWORK_CONTRIBUTOR,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    VIRTUAL_MACHINE_CONTRIBUTOR,
    AwsIdentityArgs,
    AzureIdentityArgs,
    OrchestratorIdentity,
    OrchestratorIdentityArgs,
    orchestrator_policy,
)
from tests.stacks.pulumi_harness import ACCOUNT_ID, SUBSCRIPTION_ID, Run, run
from tests.stacks.samples import TAGS, aws_pair, azure_target

BUCKETS = ["arn:aws:s3:::backups", "arn:aws:s3:::backups-replica"]
RESOURCE_GROUP_ID = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/drctl"
ACCOUNT_SCOPE = f"{RESOURCE_GROUP_ID}/providers/Microsoft.Storage/storageAccounts/vault"
EXPECTED_ACTIONS = {
    "s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketVersioning",
    "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
    "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
    "route53:ChangeResourceRecordSets", "route53:GetHostedZone", "route53:ListResourceRecordSets",
    "route53:GetChange", "route53:GetHealthCheck", "route53:GetHealthCheckStatus",
    "ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances", "ec2:RunInstances", "ec2:CreateTags",
    "ec2:CopyImage", "ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeImages",
    "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs",
}  # fmt: skip


def _aws(trusted: str | None = None, *, manage_ec2: bool = True) -> Run:
    def program() -> dict[str, Any]:
        identity = OrchestratorIdentity(
            "who",
            OrchestratorIdentityArgs(
                tags=TAGS,
                aws=AwsIdentityArgs(
                    provider=aws_pair().primary,
                    recovery_region="us-west-2",
                    stack="test",
                    bucket_arns=[pulumi.Output.from_input(b) for b in BUCKETS],
                    kms_key_arns=pulumi.Output.from_input(["arn:aws:kms:us-east-1:1:key/k"]),
                    hosted_zone_ids=[pulumi.Output.from_input("ZPROD"), pulumi.Output.from_input("ZDRILL")],
                    health_check_ids=[pulumi.Output.from_input("hc-1")],
                    manage_ec2=manage_ec2,
                    trusted_principal=trusted,
                ),
            ),
        )
        return {"role_arn": identity.role_arn, "assignments": identity.role_assignment_ids}

    return run(program)


def _document(result: Run) -> dict[str, Any]:
    (policy,) = result.of_type("aws:iam/policy:Policy")
    document: dict[str, Any] = json.loads(policy.inputs["policy"])
    return document


def _statements(result: Run) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in _document(result)["Statement"]}


def test_policy_lists_exactly_the_runbook_actions() -> None:
    result = _aws()
    actions = {a for s in _document(result)["Statement"] for a in s["Action"]}
    assert actions == EXPECTED_ACTIONS
    assert all("*" not in a for a in actions)


def test_only_unscopable_describe_calls_use_a_wildcard_resource() -> None:
    statements = _statements(_aws())
    wildcard = {sid for sid, s in statements.items() if "*" in s["Resource"]}
    assert wildcard == {"Describe"}
    assert statements["BackupBuckets"]["Resource"] == BUCKETS
    assert statements["BackupObjects"]["Resource"] == [f"{b}/*" for b in BUCKETS]
    assert statements["FailoverRecords"]["Resource"] == [
        "arn:aws:route53:::hostedzone/ZPROD",
        "arn:aws:route53:::hostedzone/ZDRILL",
    ]
    assert statements["HealthChecks"]["Resource"] == ["arn:aws:route53:::healthcheck/hc-1"]


def test_ec2_lifecycle_is_limited_to_this_stacks_instances_in_the_recovery_region() -> None:
    lifecycle = _statements(_aws())["StandbyLifecycle"]
    assert lifecycle["Resource"] == [f"arn:aws:ec2:us-west-2:{ACCOUNT_ID}:instance/*"]
    assert lifecycle["Condition"] == {"StringEquals": {"aws:ResourceTag/drctl:stack": "test"}}


def test_role_is_assumable_by_the_account_root_unless_a_principal_is_configured() -> None:
    default = _aws()
    (role,) = default.of_type("aws:iam/role:Role")
    principal = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"]
    assert principal == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}
    assert default.values["role_arn"] == role.outputs["arn"]
    (attachment,) = default.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs["role"] == role.outputs["name"]
    assert attachment.inputs["policyArn"] == default.of_type("aws:iam/policy:Policy")[0].outputs["arn"]

    runner = "arn:aws:iam::111122223333:role/runner"
    (role,) = _aws(runner).of_type("aws:iam/role:Role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"AWS": runner}


def test_no_ec2_permissions_when_recovery_is_not_on_aws() -> None:
    actions = {a for s in _document(_aws(manage_ec2=False))["Statement"] for a in s["Action"]}
    assert not any(a.startswith("ec2:") for a in actions)


def test_policy_omits_statements_for_absent_resources() -> None:
    document = orchestrator_policy(
        account_id="1", region="r", stack="s", bucket_arns=[], kms_key_arns=[],
        hosted_zone_ids=[], health_check_ids=[], manage_ec2=False,
    )  # fmt: skip
    assert document == {"Version": "2012-10-17", "Statement": []}


@pytest.fixture(scope="module")
def azure_roles() -> Run:
    def program() -> dict[str, Any]:
        identity = OrchestratorIdentity(
            "who",
            OrchestratorIdentityArgs(
                tags=TAGS,
                azure=AzureIdentityArgs(
                    provider=azure_target().provider,
                    principal_id="principal-object-id",
                    resource_group_id=pulumi.Output.from_input(RESOURCE_GROUP_ID),
                    storage_account_id=pulumi.Output.from_input(ACCOUNT_SCOPE),
                ),
            ),
        )
        return {"assignments": identity.role_assignment_ids, "role_arn": identity.role_arn}

    return run(program)


def test_azure_roles_are_scoped_to_the_resource_group_and_vault(azure_roles: Run) -> None:
    assignments = azure_roles.of_type("azure-native:authorization:RoleAssignment")
    definitions = f"/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/"
    granted = {(a.inputs["roleDefinitionId"].removeprefix(definitions), a.inputs["scope"]) for a in assignments}
    assert granted == {
        (VIRTUAL_MACHINE_CONTRIBUTOR, RESOURCE_GROUP_ID),
        (NETWORK_CONTRIBUTOR, RESOURCE_GROUP_ID),
        (STORAGE_BLOB_DATA_CONTRIBUTOR, ACCOUNT_SCOPE),
    }
    assert all(a.inputs["principalId"] == "principal-object-id" for a in assignments)
    assert all("/resourceGroups/" in a.inputs["scope"] for a in assignments)
    assert azure_roles.values["assignments"] == [a.id for a in assignments]
    assert azure_roles.values["role_arn"] is None
    assert "azure-native:authorization:getClientConfig" in azure_roles.invokes
