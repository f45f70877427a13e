"""OrchestratorIdentity: an IAM policy naming exactly the runbooks' actions, and narrowly scoped Azure roles."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from orchestrator.drill.scope import TAG_BATCH, TAG_RUN, TAG_STARTED
from orchestrator.permissions import DRILL_TAG_PREFIX, actions_by_scope
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
# Actions an outside review found missing when the policy was a hand-kept list: each is called by drctl.
ONCE_MISSING = {
    "s3:ListBucketVersions",
    "s3:AbortMultipartUpload",
    "ec2:DeregisterImage",
    "route53:ListHostedZonesByName",
}


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


def test_policy_grants_exactly_the_actions_the_code_declares() -> None:
    result = _aws()
    actions = {a for s in _document(result)["Statement"] for a in s["Action"]}
    declared = {a for scoped in actions_by_scope(ec2=True).values() for a in scoped}
    assert actions == declared
    assert actions >= ONCE_MISSING
    assert all("*" not in a for a in actions)


def test_each_scope_is_one_statement_with_its_own_actions() -> None:
    statements = _statements(_aws())
    assert {sid: tuple(s["Action"]) for sid, s in statements.items()} == {
        scope.value: actions for scope, actions in actions_by_scope(ec2=True).items()
    }


def test_launching_from_a_template_is_allowed() -> None:
    launch = _statements(_aws())["LaunchRecovery"]
    assert f"arn:aws:ec2:us-west-2:{ACCOUNT_ID}:launch-template/*" in launch["Resource"]


def test_tags_go_on_only_in_the_call_that_makes_the_resource() -> None:
    """The hole an outside review found: CreateTags on instance/* without a condition let the role tag any
    instance with this stack's tag, which then satisfied the tag condition on stop and terminate."""
    statements = _statements(_aws())
    on_create = statements["TagOnCreate"]
    assert on_create["Action"] == ["ec2:CreateTags"]
    assert on_create["Condition"] == {"StringEquals": {"ec2:CreateAction": ["RunInstances", "CopyImage"]}}
    # Every other statement allowing CreateTags is held to drill tag keys on images that already carry the run.
    later = [s for s in statements.values() if "ec2:CreateTags" in s["Action"] and s is not on_create]
    assert later
    for statement in later:
        assert all(":image/" in r for r in statement["Resource"])
        assert statement["Condition"] == {
            "Null": {f"aws:ResourceTag/{TAG_RUN}": "false"},
            "ForAllValues:StringLike": {"aws:TagKeys": ["drctl:drill-*"]},
        }


def test_only_drill_images_can_be_deregistered() -> None:
    remove = _statements(_aws())["RemoveDrillImages"]
    assert remove["Action"] == ["ec2:DeregisterImage"]
    assert remove["Condition"] == {"Null": {f"aws:ResourceTag/{TAG_RUN}": "false"}}


def test_every_drill_tag_is_one_the_image_tag_condition_admits() -> None:
    assert all(tag.startswith(DRILL_TAG_PREFIX) for tag in (TAG_RUN, TAG_STARTED, TAG_BATCH))


def test_only_unscopable_describe_calls_use_a_wildcard_resource() -> None:
    statements = _statements(_aws())
    wildcard = {sid for sid, s in statements.items() if "*" in s["Resource"]}
    assert wildcard == {"Describe", "FindZones"}
    assert statements["FindZones"]["Action"] == ["route53:ListHostedZonesByName"]
    assert statements["BackupBuckets"]["Resource"] == BUCKETS
    assert statements["BackupObjects"]["Resource"] == [f"{b}/*" for b in BUCKETS]
    assert statements["FailoverRecords"]["Resource"] == [
        "arn:aws:route53:::hostedzone/ZPROD",
        "arn:aws:route53:::hostedzone/ZDRILL",
    ]
    assert statements["ChangeQueues"]["Resource"] == [f"arn:aws:sqs:*:{ACCOUNT_ID}:drctl-*"]


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
        hosted_zone_ids=[], manage_ec2=False,
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
