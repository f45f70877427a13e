"""Standby compute per tier that costs (almost) nothing until a failover starts it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_azure_native as azure_native

from stacks.config import TierConfig
from stacks.naming import Tags, tags
from stacks.providers import AzureTarget, on

TYPE = "drctl:dr:StandbyCompute"
compute = azure_native.compute
StandbyMode = Literal["stopped_instances", "launch_templates", "vmss", "vm"]


@dataclass(frozen=True)
class AwsComputeArgs:
    recovery: aws.Provider
    mode: Literal["stopped_instances", "launch_templates"]


@dataclass(frozen=True)
class AzureComputeArgs:
    target: AzureTarget
    mode: Literal["vmss", "vm"]
    admin_username: str
    ssh_public_key: str


@dataclass(frozen=True)
class StandbyComputeArgs:
    tiers: tuple[TierConfig, ...]
    image_ids: Mapping[str, pulumi.Output[str]]
    subnet_ids: Sequence[pulumi.Output[str]]
    security_group_ids: Mapping[str, pulumi.Output[str]]
    tags: Tags
    aws: AwsComputeArgs | None = None
    azure: AzureComputeArgs | None = None
    # Tier -> the image's root device name; launch templates need it (VmImages.root_device_names).
    root_device_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class StandbyCompute(pulumi.ComponentResource):
    """``instance_ids`` maps tier to stopped/deallocated machines; ``template_ids`` to templates or scale sets."""

    mode: StandbyMode
    tier_order: list[str]
    instance_ids: pulumi.Output[dict[str, list[str]]]
    template_ids: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: StandbyComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        self.tier_order = [t.name for t in args.tiers]
        instances: dict[str, list[pulumi.Output[str]]] = {t: [] for t in self.tier_order}
        templates: dict[str, pulumi.Output[str]] = {}
        if args.aws is not None:
            self.mode = args.aws.mode
        elif args.azure is not None:
            self.mode = args.azure.mode
        else:
            raise ValueError("StandbyCompute needs aws or azure arguments")
        for tier in args.tiers:
            base = f"{name}-{tier.name}"
            if args.aws is not None and self.mode == "stopped_instances":
                instances[tier.name] = self._stopped_instances(base, tier, args, args.aws)
            elif args.aws is not None:
                templates[tier.name] = self._launch_template(base, tier, args, args.aws)
            elif args.azure is not None and self.mode == "vmss":
                templates[tier.name] = self._scale_set(base, tier, args, args.azure)
            elif args.azure is not None:
                instances[tier.name] = self._vms(base, tier, args, args.azure)
        self.instance_ids = pulumi.Output.all(**{t: pulumi.Output.all(*ids) for t, ids in instances.items()})
        self.template_ids = pulumi.Output.all(**templates) if templates else pulumi.Output.from_input({})
        self.register_outputs(
            {"tier_order": self.tier_order, "instance_ids": self.instance_ids, "template_ids": self.template_ids}
        )

    # --- AWS -------------------------------------------------------------------------------------------

    def _stopped_instances(
        self, base: str, tier: TierConfig, args: StandbyComputeArgs, cloud: AwsComputeArgs
    ) -> list[pulumi.Output[str]]:
        opts = on(cloud.recovery, self)
        ids: list[pulumi.Output[str]] = []
        for n in range(tier.count):
            instance = aws.ec2.Instance(
                f"{base}-{n}",
                ami=args.image_ids[tier.name],
                instance_type=tier.instance_type,
                # One subnet per availability zone: spreading the tier survives the loss of a zone.
                subnet_id=args.subnet_ids[n % len(args.subnet_ids)],
                vpc_security_group_ids=[args.security_group_ids[tier.name]],
                associate_public_ip_address=False,
                root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(encrypted=True),
                metadata_options=aws.ec2.InstanceMetadataOptionsArgs(http_tokens="required"),
                tags=tags(args.tags, "standby", tier.name),
                opts=opts,
            )
            # A stopped instance bills only for its volumes, and starts in about a minute at failover.
            aws.ec2transitgateway.InstanceState(f"{base}-{n}", instance_id=instance.id, state="stopped", opts=opts)
            ids.append(instance.id)
        return ids

    def _launch_template(
        self, base: str, tier: TierConfig, args: StandbyComputeArgs, cloud: AwsComputeArgs
    ) -> pulumi.Output[str]:
        labels = tags(args.tags, "standby", tier.name)
        if tier.name not in args.root_device_names:
            raise ValueError(f"StandbyCompute needs the root device name of tier {tier.name}'s image")
        template = aws.ec2.LaunchTemplate(
            base,
            image_id=args.image_ids[tier.name],
            instance_type=tier.instance_type,
            vpc_security_group_ids=[args.security_group_ids[tier.name]],
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(http_tokens="required"),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    # The image's own root device: a mapping under any other name adds a second volume and
                    # leaves the root one as the image has it.
                    device_name=args.root_device_names[tier.name],
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(encrypted="true"),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=labels)
                for kind in ("instance", "volume")
            ],
            update_default_version=True,
            tags=labels,
            opts=on(cloud.recovery, self),
        )
        return template.id

    # --- Azure -----------------------------------------------------------------------------------------

    def _linux(self, cloud: AzureComputeArgs) -> compute.LinuxConfigurationArgs:
        return compute.LinuxConfigurationArgs(
            disable_password_authentication=True,
            ssh=compute.SshConfigurationArgs(
                public_keys=[
                    compute.SshPublicKeyArgs(
                        key_data=cloud.ssh_public_key,
                        path=f"/home/{cloud.admin_username}/.ssh/authorized_keys",
                    )
                ]
            ),
        )

    def _scale_set(
        self,
        base: str,
        tier: TierConfig,
        args: StandbyComputeArgs,
        cloud: AzureComputeArgs,
    ) -> pulumi.Output[str]:
        target = cloud.target
        scale_set = compute.VirtualMachineScaleSet(
            base,
            resource_group_name=target.resource_group_name,
            location=target.location,
            # Capacity 0 is the standby state: the definition exists, no VM is billed.
            sku=compute.SkuArgs(name=tier.vm_size, capacity=0, tier="Standard"),
            orchestration_mode="Uniform",
            overprovision=False,
            upgrade_policy=compute.UpgradePolicyArgs(mode=compute.UpgradeMode.MANUAL),
            virtual_machine_profile=compute.VirtualMachineScaleSetVMProfileArgs(
                os_profile=compute.VirtualMachineScaleSetOSProfileArgs(
                    computer_name_prefix=tier.name,
                    admin_username=cloud.admin_username,
                    linux_configuration=self._linux(cloud),
                ),
                storage_profile=compute.VirtualMachineScaleSetStorageProfileArgs(
                    image_reference=compute.ImageReferenceArgs(id=args.image_ids[tier.name]),
                    os_disk=compute.VirtualMachineScaleSetOSDiskArgs(
                        create_option="FromImage",
                        managed_disk=compute.VirtualMachineScaleSetManagedDiskParametersArgs(
                            storage_account_type="StandardSSD_LRS"
                        ),
                    ),
                ),
                network_profile=compute.VirtualMachineScaleSetNetworkProfileArgs(
                    network_interface_configurations=[
                        compute.VirtualMachineScaleSetNetworkConfigurationArgs(
                            name=f"{tier.name}-nic",
                            primary=True,
                            network_security_group=compute.SubResourceArgs(id=args.security_group_ids[tier.name]),
                            ip_configurations=[
                                compute.VirtualMachineScaleSetIPConfigurationArgs(
                                    name=f"{tier.name}-ip", subnet=compute.ApiEntityReferenceArgs(id=args.subnet_ids[0])
                                )
                            ],
                        )
                    ]
                ),
            ),
            tags=tags(args.tags, "standby", tier.name),
            opts=on(target.provider, self),
        )
        return scale_set.id

    def _vms(
        self,
        base: str,
        tier: TierConfig,
        args: StandbyComputeArgs,
        cloud: AzureComputeArgs,
    ) -> list[pulumi.Output[str]]:
        target = cloud.target
        opts = on(target.provider, self)
        labels = tags(args.tags, "standby", tier.name)
        ids: list[pulumi.Output[str]] = []
        for n in range(tier.count):
            nic = azure_native.network.NetworkInterface(
                f"{base}-{n}",
                resource_group_name=target.resource_group_name,
                location=target.location,
                network_security_group=azure_native.network.NetworkSecurityGroupArgs(
                    id=args.security_group_ids[tier.name]
                ),
                ip_configurations=[
                    azure_native.network.NetworkInterfaceIPConfigurationArgs(
                        name="primary",
                        subnet=azure_native.network.SubnetArgs(id=args.subnet_ids[0]),
                        private_ip_allocation_method="Dynamic",
                    )
                ],
                tags=labels,
                opts=opts,
            )
            vm = compute.VirtualMachine(
                f"{base}-{n}",
                resource_group_name=target.resource_group_name,
                location=target.location,
                hardware_profile=compute.HardwareProfileArgs(vm_size=tier.vm_size),
                storage_profile=compute.StorageProfileArgs(
                    image_reference=compute.ImageReferenceArgs(id=args.image_ids[tier.name]),
                    os_disk=compute.OSDiskArgs(
                        create_option="FromImage",
                        managed_disk=compute.ManagedDiskParametersArgs(storage_account_type="StandardSSD_LRS"),
                    ),
                ),
                os_profile=compute.OSProfileArgs(
                    computer_name=f"{tier.name}{n}",
                    admin_username=cloud.admin_username,
                    linux_configuration=self._linux(cloud),
                ),
                network_profile=compute.NetworkProfileArgs(
                    network_interfaces=[compute.NetworkInterfaceReferenceArgs(id=nic.id, primary=True)]
                ),
                # azure-native has no power-state resource: the VM boots once, then `drctl` (or
                # `az vm deallocate`) deallocates every VM carrying this tag. See docs/stacks.md.
                tags={**labels, "drctl:standby-state": "deallocated"},
                opts=opts,
            )
            ids.append(vm.id)
        return ids
