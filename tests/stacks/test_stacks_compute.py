"""StandbyCompute: standby capacity per tier in each mode, tagged and wired to the recovery network."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from stacks.components.standby_compute import AwsComputeArgs, AzureComputeArgs, StandbyCompute, StandbyComputeArgs
from stacks.config import TierConfig
from tests.stacks.pulumi_harness import Run, run
from tests.stacks.samples import TAGS, TIERS, aws_pair, azure_target

LINUX_TIERS = tuple(
    TierConfig(name=t.name, port=t.port, ingress_from=t.ingress_from, count=t.count, vm_size="Standard_D2s_v5")
    for t in TIERS
)
SUBNETS = ["subnet-a", "subnet-b"]
# Ubuntu and Windows AMIs boot from /dev/sda1, Amazon Linux from /dev/xvda.
ROOT_DEVICES = {"db": "/dev/sda1", "app": "/dev/xvda", "web": "/dev/sda1"}
INSTANCE = "aws:ec2/instance:Instance"


def _ids(prefix: str) -> dict[str, pulumi.Output[str]]:
    return {t.name: pulumi.Output.from_input(f"{prefix}-{t.name}") for t in TIERS}


def _run(mode: str) -> Run:
    def program() -> dict[str, Any]:
        aws_args = azure_args = None
        if mode in ("stopped_instances", "launch_templates"):
            aws_args = AwsComputeArgs(aws_pair().recovery, mode)  # type: ignore[arg-type]  # mode is a valid literal
        else:
            azure_args = AzureComputeArgs(azure_target(), mode, "drctl", "ssh-ed25519 AAAA test")  # type: ignore[arg-type]
        standby = StandbyCompute(
            "standby",
            StandbyComputeArgs(
                tiers=TIERS if aws_args else LINUX_TIERS,
                image_ids=_ids("image"),
                subnet_ids=[pulumi.Output.from_input(s) for s in SUBNETS],
                security_group_ids=_ids("sg"),
                tags=TAGS,
                aws=aws_args,
                azure=azure_args,
                root_device_names={t.name: ROOT_DEVICES[t.name] for t in TIERS},
            ),
        )
        return {"instances": standby.instance_ids, "templates": standby.template_ids, "order": standby.tier_order}

    return run(program)


def test_stopped_instances_are_created_per_tier_and_stopped() -> None:
    result = _run("stopped_instances")
    instances = result.of_type(INSTANCE)
    assert sorted(i.name for i in instances) == ["standby-app-0", "standby-app-1", "standby-db-0", "standby-web-0"]
    states = {
        s.inputs["instanceId"]: s.inputs["state"]
        for s in result.of_type("aws:ec2transitgateway/instanceState:InstanceState")
    }
    assert states == {i.id: "stopped" for i in instances}
    for instance in instances:
        tier = instance.inputs["tags"]["drctl:tier"]
        assert instance.inputs["ami"] == f"image-{tier}"
        assert instance.inputs["vpcSecurityGroupIds"] == [f"sg-{tier}"]
        assert instance.inputs["associatePublicIpAddress"] is False
        assert instance.inputs["rootBlockDevice"]["encrypted"] is True
        assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
        assert instance.inputs["tags"]["drctl:role"] == "standby"
        assert Run.provider_name(instance) == "aws-recovery"
    app = {i.name: i.inputs["subnetId"] for i in instances if i.name.startswith("standby-app")}
    assert app == {"standby-app-0": "subnet-a", "standby-app-1": "subnet-b"}
    assert result.values["instances"] == {
        "db": ["instance-standby-db-0"],
        "app": ["instance-standby-app-0", "instance-standby-app-1"],
        "web": ["instance-standby-web-0"],
    }
    assert result.values["templates"] == {}
    assert result.values["order"] == ["db", "app", "web"]


def test_pilot_light_keeps_launch_templates_and_no_instances() -> None:
    result = _run("launch_templates")
    assert result.of_type(INSTANCE) == []
    templates = {t.name: t.inputs for t in result.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    assert set(templates) == {"standby-db", "standby-app", "standby-web"}
    db = templates["standby-db"]
    assert db["imageId"] == "image-db"
    assert db["vpcSecurityGroupIds"] == ["sg-db"]
    assert db["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    # The mapping must name the image's own root device, or it adds a second volume beside the root one.
    assert {name: t["blockDeviceMappings"][0]["deviceName"] for name, t in templates.items()} == {
        f"standby-{tier}": device for tier, device in ROOT_DEVICES.items()
    }
    assert {s["resourceType"] for s in db["tagSpecifications"]} == {"instance", "volume"}
    assert db["tagSpecifications"][0]["tags"]["drctl:tier"] == "db"
    assert result.values["instances"] == {"db": [], "app": [], "web": []}
    assert set(result.values["templates"]) == {"db", "app", "web"}


def test_scale_sets_stand_by_at_capacity_zero() -> None:
    result = _run("vmss")
    sets = {s.name: s.inputs for s in result.of_type("azure-native:compute:VirtualMachineScaleSet")}
    assert set(sets) == {"standby-db", "standby-app", "standby-web"}
    for name, inputs in sets.items():
        tier = name.removeprefix("standby-")
        assert inputs["sku"] == {"name": "Standard_D2s_v5", "capacity": 0, "tier": "Standard"}
        profile = inputs["virtualMachineProfile"]
        assert profile["storageProfile"]["imageReference"] == {"id": f"image-{tier}"}
        nic = profile["networkProfile"]["networkInterfaceConfigurations"][0]
        assert nic["networkSecurityGroup"] == {"id": f"sg-{tier}"}
        assert nic["ipConfigurations"][0]["subnet"] == {"id": "subnet-a"}
        assert profile["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
        assert inputs["tags"]["drctl:tier"] == tier
    assert result.of_type("azure-native:compute:VirtualMachine") == []
    assert result.values["instances"] == {"db": [], "app": [], "web": []}


def test_azure_vm_mode_creates_vms_marked_for_deallocation() -> None:
    result = _run("vm")
    vms = result.of_type("azure-native:compute:VirtualMachine")
    nics = {n.id: n for n in result.of_type("azure-native:network:NetworkInterface")}
    assert len(vms) == 4
    for vm in vms:
        assert vm.inputs["tags"]["drctl:standby-state"] == "deallocated"
        (nic_ref,) = vm.inputs["networkProfile"]["networkInterfaces"]
        nic = nics[nic_ref["id"]]
        tier = vm.inputs["tags"]["drctl:tier"]
        assert nic.inputs["networkSecurityGroup"] == {"id": f"sg-{tier}"}
    assert len(result.values["instances"]["app"]) == 2
    assert result.values["templates"] == {}


def test_standby_compute_needs_a_cloud() -> None:
    def program() -> None:
        StandbyCompute("standby", StandbyComputeArgs(TIERS, {}, [], {}, TAGS))

    with pytest.raises(ValueError, match="needs aws or azure"):
        run(program)
