"""The program exports the fields of the stack-outputs contract, with values that validate.

Pulumi's Python SDK drops a stack export whose value is ``None`` (``serialize_properties`` skips properties
that serialise to ``None``), so `pulumi stack output --json` has no key at all for a field that does not apply
to the stack. The tests read the exports the way a real stack hands them over, through :func:`as_deployed`.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

import pytest

from orchestrator.stack_outputs import StackOutputs, contract_field_names
from tests.stacks.pulumi_harness import STACK_NAMES, run_stack

# Fields each checked-in stack leaves as None, and so leaves out of `pulumi stack output --json`.
NOT_APPLICABLE = {
    "lab": {"vault_account", "vault_container", "vault_blob_endpoint", "azure_resource_group"},
    "aws-to-azure": set(),
    "azure-to-aws": set(),
}


def as_deployed(exports: Mapping[str, Any]) -> dict[str, Any]:
    """The exports as `pulumi stack output --json` returns them: without the ones whose value is None."""
    return {name: value for name, value in exports.items() if value is not None}


def _optional(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_exports_are_the_contract_fields_less_those_the_sdk_drops(stack: str) -> None:
    exports = run_stack(stack).exports
    deployed = set(as_deployed(exports))
    contract = contract_field_names()
    assert deployed - contract == set(), "exported but not in the contract"
    assert contract - deployed == NOT_APPLICABLE[stack], "in the contract but not in the deployed outputs"
    # The program still names every field; only its None values vanish on the way to the engine.
    assert set(exports) <= contract


def test_every_field_that_may_be_none_may_also_be_absent() -> None:
    fields = StackOutputs.model_fields
    nullable = {name for name, field in fields.items() if _optional(field.annotation)}
    assert set().union(*NOT_APPLICABLE.values()) <= nullable
    assert {name for name in nullable if fields[name].is_required()} == set()
    assert {name for name in fields if name not in nullable and not fields[name].is_required()} == set()


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_exported_values_satisfy_the_contract(stack: str) -> None:
    outputs = StackOutputs.model_validate(as_deployed(run_stack(stack).exports))
    assert outputs.schema_version == 1
    assert outputs.stack == stack
    assert set(outputs.standby_tier_order) == set(outputs.image_ids) == set(outputs.security_group_ids)
    assert set(outputs.standby_instance_ids) == set(outputs.standby_tier_order)
    assert outputs.drill_network_id != outputs.recovery_network_id
    assert outputs.drill_record_name != outputs.production_record_name


def test_lab_outputs_describe_an_aws_only_estate() -> None:
    outputs = StackOutputs.model_validate(as_deployed(run_stack("lab").exports))
    assert outputs.backup_bucket
    assert outputs.backup_replica_bucket
    assert (outputs.backup_bucket_region, outputs.backup_replica_region) == ("us-east-1", "us-west-2")
    assert outputs.vault_account is outputs.vault_container is outputs.azure_resource_group is None
    assert outputs.standby_mode == "stopped_instances"
    assert all(len(ids) == 1 for ids in outputs.standby_instance_ids.values())
    assert outputs.health_check_id is not None
    assert outputs.orchestrator_role_arn is not None


def test_aws_to_azure_outputs_name_both_vaults_and_azure_standby() -> None:
    outputs = StackOutputs.model_validate(as_deployed(run_stack("aws-to-azure").exports))
    assert outputs.backup_bucket
    assert outputs.vault_account
    assert outputs.vault_container == "backups"
    assert outputs.vault_blob_endpoint == f"https://{outputs.vault_account}.blob.core.windows.net/"
    assert outputs.azure_resource_group is not None
    # Deallocated VMs, which compute.start starts by name: every tier has its own.
    assert outputs.standby_mode == "vm"
    assert set(outputs.standby_instance_ids) == {"db", "app", "web"}
    assert all(outputs.standby_instance_ids.values())
    assert outputs.dns_provider == "traffic_manager"
    assert outputs.recovery_region == "eastus2"
