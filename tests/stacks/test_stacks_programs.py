"""Each checked-in stack, run through ``stacks/__main__.py`` under mocks, builds the estate it describes."""

from __future__ import annotations

import json

import pytest

from stacks.config import ConfigError
from tests.stacks.pulumi_harness import STACK_NAMES, Run, run_main, run_stack, stack_config

COMPONENTS = {
    "drctl:dr:ReplicatedBackupStorage",
    "drctl:dr:VmImages",
    "drctl:dr:FailoverNetwork",
    "drctl:dr:StandbyCompute",
    "drctl:dr:OrchestratorIdentity",
}
# Created at the top level on purpose: providers, and the resource group every Azure component shares.
TOP_LEVEL = ("pulumi:providers:", "azure-native:resources:ResourceGroup")


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_every_component_is_built_once(stack: str) -> None:
    result = run_stack(stack)
    assert sorted(r.type for r in result.resources if r.type.startswith("drctl:")) == sorted(COMPONENTS)


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_every_resource_is_parented_to_a_component(stack: str) -> None:
    orphans = [
        urn
        for urn in run_stack(stack).urns
        if not any(f"{c}$" in urn for c in COMPONENTS)
        and not any(f"Stack${t}" in urn for t in (*COMPONENTS, *TOP_LEVEL))
    ]
    assert orphans == []


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_every_resource_uses_an_explicit_provider(stack: str) -> None:
    result = run_stack(stack)
    cloud_resources = [r for r in result.resources if r.type.split(":")[0] in ("aws", "azure-native")]
    assert cloud_resources
    assert [r.name for r in cloud_resources if Run.provider_name(r) is None] == []
    assert stack_config(stack)["pulumi:disable-default-providers"] == '["*"]'


def test_lab_points_every_aws_provider_at_localstack() -> None:
    providers = run_stack("lab").of_type("pulumi:providers:aws")
    assert {p.inputs["region"] for p in providers} == {"us-east-1", "us-west-2"}
    for provider in providers:
        inputs = provider.inputs
        assert inputs["accessKey"]["value"] == inputs["secretKey"]["value"] == "test"
        for flag in ("skipCredentialsValidation", "skipRequestingAccountId", "skipMetadataApiCheck", "s3UsePathStyle"):
            assert inputs[flag] == "true", flag
        (endpoints,) = json.loads(inputs["endpoints"])
        assert {"s3", "ec2", "iam", "route53", "sts"} <= set(endpoints)
        assert set(endpoints.values()) == {"http://127.0.0.1:4566"}


def test_lab_creates_nothing_on_azure() -> None:
    result = run_stack("lab")
    assert [r.type for r in result.resources if r.type.startswith(("azure-native:", "pulumi:providers:azure"))] == []
    assert not any(i.startswith("azure-native:") for i in result.invokes)


def test_lab_fails_over_aws_to_aws_with_stopped_standby_hosts() -> None:
    result = run_stack("lab")
    instances = result.of_type("aws:ec2/instance:Instance")
    assert {i.inputs["tags"]["drctl:tier"] for i in instances} == {"db", "app", "web"}
    states = result.of_type("aws:ec2transitgateway/instanceState:InstanceState")
    assert {s.inputs["instanceId"] for s in states} == {i.id for i in instances}
    assert {s.inputs["state"] for s in states} == {"stopped"}
    assert len(result.of_type("aws:s3/bucket:Bucket")) == 2
    assert result.of_type("aws:kms/key:Key") == []
    assert len(result.of_type("aws:route53/record:Record")) == 3


def test_non_lab_providers_use_ambient_credentials() -> None:
    for stack in ("aws-to-azure", "azure-to-aws"):
        for provider in run_stack(stack).of_type("pulumi:providers:aws"):
            assert "accessKey" not in provider.inputs
            assert "endpoints" not in provider.inputs


def test_aws_to_azure_recovers_into_deallocated_vms_behind_traffic_manager() -> None:
    result = run_stack("aws-to-azure")
    assert result.of_type("aws:ec2/instance:Instance") == []
    assert result.of_type("aws:ec2/vpc:Vpc") == []
    # Standby VMs (one per tier here), tagged to be deallocated; no scale set, which no action could scale.
    assert result.of_type("azure-native:compute:VirtualMachineScaleSet") == []
    vms = result.of_type("azure-native:compute:VirtualMachine")
    assert len(vms) == 3
    assert {v.inputs["tags"]["drctl:standby-state"] for v in vms} == {"deallocated"}
    (profile,) = result.of_type("azure-native:trafficmanager:Profile")
    assert profile.inputs["trafficRoutingMethod"] == "Priority"
    (account,) = result.of_type("azure-native:storage:StorageAccount")
    assert account.inputs["sku"] == {"name": "Standard_RAGRS"}
    assert account.inputs["immutableStorageWithVersioning"]["enabled"] is True
    buckets = result.of_type("aws:s3/bucket:Bucket")
    assert [b.inputs["objectLockEnabled"] for b in buckets] == [True, True]
    assert len(result.of_type("aws:kms/key:Key")) == 2
    assert len(result.of_type("azure-native:authorization:RoleAssignment")) == 3
    # Versions live where their sources are (eastus) and replicate to recovery (eastus2) and centralus.
    (regions,) = {
        tuple(r["name"] for r in v.inputs["publishingProfile"]["targetRegions"])
        for v in result.of_type("azure-native:compute:GalleryImageVersion")
    }
    assert regions == ("eastus", "eastus2", "centralus")


def test_azure_to_aws_recovers_into_pilot_light_behind_route53() -> None:
    result = run_stack("azure-to-aws")
    assert result.of_type("aws:ec2/instance:Instance") == []
    assert len(result.of_type("aws:ec2/launchTemplate:LaunchTemplate")) == 3
    recovery_subnets = [s for s in result.of_type("aws:ec2/subnet:Subnet") if s.role == "recovery"]
    assert len(recovery_subnets) == 6
    failover = [r for r in result.of_type("aws:route53/record:Record") if r.inputs.get("failoverRoutingPolicies")]
    assert len(failover) == 2
    (account,) = result.of_type("azure-native:storage:StorageAccount")
    assert account.inputs["sku"] == {"name": "Standard_GZRS"}
    assert result.of_type("azure-native:network:VirtualNetwork") == []
    (role,) = [r for r in result.of_type("aws:iam/role:Role") if r.name.endswith("orchestrator")]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::111122223333:role/drctl-runner"}


def test_program_stops_on_invalid_config_before_creating_resources() -> None:
    config = stack_config("lab")
    config["drctl:network"] = json.dumps({"admin_cidrs": ["0.0.0.0/0"]})
    with pytest.raises(ConfigError, match="opens SSH/RDP to the internet"):
        run_main("lab", config)
