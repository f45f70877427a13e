"""The program exports exactly the fields of the stack-outputs contract, with values that validate."""

from __future__ import annotations

import pytest

from orchestrator.stack_outputs import StackOutputs, contract_field_names
from tests.stacks.pulumi_harness import STACK_NAMES, run_stack


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_exports_are_exactly_the_contract_fields(stack: str) -> None:
    exported = set(run_stack(stack).exports)
    contract = contract_field_names()
    assert exported - contract == set(), "exported but not in the contract"
    assert contract - exported == set(), "in the contract but not exported"


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_exported_values_satisfy_the_contract(stack: str) -> None:
    outputs = StackOutputs.model_validate(run_stack(stack).exports)
    assert outputs.schema_version == 1
    assert outputs.stack == stack
    assert set(outputs.standby_tier_order) == set(outputs.image_ids) == set(outputs.security_group_ids)
    assert set(outputs.standby_instance_ids) == set(outputs.standby_tier_order)
    assert outputs.drill_network_id != outputs.recovery_network_id
    assert outputs.drill_record_name != outputs.production_record_name


def test_lab_outputs_describe_an_aws_only_estate() -> None:
    outputs = StackOutputs.model_validate(run_stack("lab").exports)
    assert outputs.backup_bucket
    assert outputs.backup_replica_bucket
    assert (outputs.backup_bucket_region, outputs.backup_replica_region) == ("us-east-1", "us-west-2")
    assert outputs.vault_account is outputs.vault_container is outputs.azure_resource_group is None
    assert outputs.standby_mode == "stopped_instances"
    assert all(len(ids) == 1 for ids in outputs.standby_instance_ids.values())
    assert outputs.health_check_id is not None
    assert outputs.orchestrator_role_arn is not None


def test_aws_to_azure_outputs_name_both_vaults_and_azure_standby() -> None:
    outputs = StackOutputs.model_validate(run_stack("aws-to-azure").exports)
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
