"""The recovery region's images and the stopped standby instances launched from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from localstack.seed.clients import poll
from localstack.seed.errors import SeedError
from localstack.seed.network import first_id, named, tag_spec
from localstack.seed.outputs import Names, NetworkIds
from localstack.seed.workload import WORKLOAD_TAG, template_user_data
from stacks.config import AwsConfig, StackConfig, TierConfig
from stacks.naming import TIER_TAG, tags

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import BlockDeviceMappingTypeDef, FilterTypeDef

LIVE_STATES = ["pending", "running", "stopping", "stopped"]


def find_image(ec2: EC2Client, name: str) -> str | None:
    by_name: FilterTypeDef = {"Name": "name", "Values": [name]}
    images = ec2.describe_images(Owners=["self"], Filters=[by_name])["Images"]
    return first_id([i["ImageId"] for i in images if i.get("State") in ("pending", "available")])


def image_state(ec2: EC2Client, image_id: str) -> str:
    images = ec2.describe_images(ImageIds=[image_id])["Images"]
    return images[0].get("State", "missing") if images else "missing"


def ensure_image(
    ec2: EC2Client, name: str, tier: str, aws: AwsConfig, config: StackConfig, base: Mapping[str, str]
) -> str:
    """An encrypted copy of the tier's source AMI in the recovery region, as the stack's ``AmiCopy`` makes."""
    found = find_image(ec2, name)
    if found is None:
        found = ec2.copy_image(
            Name=name,
            Description=f"drctl {tier} image for the recovery region",
            SourceImageId=config.images.aws_source_amis[tier],
            SourceRegion=config.images.aws_source_region or aws.region,
            Encrypted=True,
        )["ImageId"]
        # LocalStack ignores CopyImage's TagSpecifications; tag separately (the name already makes it findable).
        labels = {**tags(base, "image", tier), "Name": name}
        ec2.create_tags(Resources=[found], Tags=[{"Key": k, "Value": v} for k, v in labels.items()])
    image_id = found
    poll(f"image {image_id} to become available", lambda: image_state(ec2, image_id) == "available")
    return image_id


def root_volume(ec2: EC2Client, image_id: str) -> BlockDeviceMappingTypeDef:
    """The image's root volume, encrypted. The size is spelled out because LocalStack refuses a mapping without
    one (AWS would take the snapshot's); the image's own size keeps the request valid on both."""
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    device = image.get("RootDeviceName", "/dev/xvda")
    sizes = [m["Ebs"]["VolumeSize"] for m in image.get("BlockDeviceMappings", []) if m.get("DeviceName") == device]
    size = sizes[0] if sizes and sizes[0] else 8
    return {"DeviceName": device, "Ebs": {"Encrypted": True, "VolumeSize": size, "DeleteOnTermination": True}}


def find_instance(ec2: EC2Client, name: str) -> str | None:
    live: FilterTypeDef = {"Name": "instance-state-name", "Values": LIVE_STATES}
    reservations = ec2.describe_instances(Filters=[live, *named(name)])["Reservations"]  # state first: cheap
    return first_id([i["InstanceId"] for r in reservations for i in r["Instances"]])


def ensure_template(
    ec2: EC2Client, config: StackConfig, names: Names, tier: TierConfig, image_id: str, labels: Mapping[str, str]
) -> str:
    """The tier's launch template: image, type, IMDSv2 only, encrypted root, and the user data that runs the
    tier's program. Instances launched from it carry ``aws:ec2launchtemplate:id``, so a drill copies a
    standby from the same template, user data included."""
    name = names.standby(tier.name, 0).rsplit("-", 1)[0]
    found = ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [name]}])
    if found["LaunchTemplates"]:
        return found["LaunchTemplates"][0]["LaunchTemplateId"]
    created = ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": tier.instance_type,  # type: ignore[typeddict-item]  # a config string, checked by EC2
            "MetadataOptions": {"HttpTokens": "required"},
            "BlockDeviceMappings": [root_volume(ec2, image_id)],  # type: ignore[list-item]
            "UserData": template_user_data(config, tier.name, "standby", names.app_data),
            # Whatever is launched from the template runs the tier's program on the lab, and says its tier.
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": WORKLOAD_TAG, "Value": tier.name}, {"Key": TIER_TAG, "Value": tier.name}],
                }
            ],
        },
        TagSpecifications=tag_spec("launch-template", name, labels),
    )
    return created["LaunchTemplate"]["LaunchTemplateId"]


def launch_standby(
    ec2: EC2Client, name: str, template: str, subnet_id: str, group_id: str, labels: Mapping[str, str]
) -> str:
    """One standby host from its tier's template, as ``StandbyCompute`` declares it, opted in to the runner."""
    reservation = ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": template},
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        SecurityGroupIds=[group_id],
        TagSpecifications=[*tag_spec("instance", name, labels), *tag_spec("volume", name, labels)],
    )
    return reservation["Instances"][0]["InstanceId"]


def ensure_standby(
    ec2: EC2Client,
    config: StackConfig,
    names: Names,
    images: Mapping[str, str],
    network: NetworkIds,
    base: Mapping[str, str],
) -> dict[str, list[str]]:
    """``count`` hosts per tier, spread over the private subnets so a tier survives the loss of a zone."""
    subnets = network.private_subnet_ids
    ids: dict[str, list[str]] = {}
    for tier in config.tiers:
        ids[tier.name] = []
        labels = tags(base, "standby", tier.name)
        template = ensure_template(ec2, config, names, tier, images[tier.name], labels)
        for n in range(tier.count):
            name = names.standby(tier.name, n)
            found = find_instance(ec2, name) or launch_standby(
                ec2,
                name,
                template,
                subnets[n % len(subnets)],
                network.security_group_ids[tier.name],
                {**labels, WORKLOAD_TAG: tier.name},
            )
            ids[tier.name].append(found)
    return ids


def instance_states(ec2: EC2Client, ids: Sequence[str]) -> dict[str, str]:
    reservations = ec2.describe_instances(InstanceIds=list(ids))["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def converge_stopped(ec2: EC2Client, ids: Sequence[str]) -> None:
    """Stop whatever runs and wait until every instance is ``stopped``, as the stack's ``InstanceState`` does.

    A pending instance cannot be stopped yet, so each round stops only the running ones and polls the rest.
    """

    def all_stopped() -> bool:
        states = instance_states(ec2, ids)
        gone = sorted(i for i in ids if states.get(i) not in LIVE_STATES)
        if gone:
            raise SeedError(f"standby instance(s) {', '.join(gone)} vanished or are terminating; run the seeder again")
        running = [i for i, state in states.items() if state == "running"]
        if running:
            ec2.stop_instances(InstanceIds=running)
        return all(state == "stopped" for state in states.values())

    poll(f"standby instances {', '.join(ids)} to stop", all_stopped)
