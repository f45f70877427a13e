"""Machine images present in the recovery region before they are needed: AMI copies or a replicated gallery."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_azure_native as azure_native

from stacks.config import HyperVGeneration, TierConfig
from stacks.naming import Tags, compact, tags
from stacks.providers import on

TYPE = "drctl:dr:VmImages"
IMAGE_VERSION = "1.0.0"


@dataclass(frozen=True)
class AwsImagesArgs:
    recovery: aws.Provider
    source_region: str
    source_amis: dict[str, str]


@dataclass(frozen=True)
class AzureImagesArgs:
    provider: azure_native.Provider
    resource_group_name: pulumi.Input[str]
    # The recovery location: every image version is replicated there, which is where standby VMs boot.
    location: str
    source_image_ids: dict[str, str]
    # Azure creates an image version only in its source's region, so the gallery lives there.
    source_location: str
    hyper_v_generations: dict[str, HyperVGeneration]
    replica_regions: tuple[str, ...] = ()

    @property
    def target_regions(self) -> list[str]:
        """Where each version is replicated: its own (source) region first, as Azure requires, then recovery."""
        regions = [self.source_location, self.location, *self.replica_regions]
        return list(dict.fromkeys(regions))


@dataclass(frozen=True)
class VmImagesArgs:
    name_prefix: str
    tiers: tuple[TierConfig, ...]
    tags: Tags
    aws: AwsImagesArgs | None = None
    azure: AzureImagesArgs | None = None


class VmImages(pulumi.ComponentResource):
    """One bootable image per tier in the recovery region; ``image_ids`` maps tier name to image id.

    ``root_device_names`` maps tier to the AMI copy's root device (AWS only): AMIs differ (``/dev/xvda`` on
    Amazon Linux, ``/dev/sda1`` on Ubuntu and Windows), and a block device mapping for any other name adds a
    second volume instead of configuring the root one.
    """

    image_ids: pulumi.Output[dict[str, str]]
    by_tier: dict[str, pulumi.Output[str]]
    root_device_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: VmImagesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        self.root_device_names = {}
        ids: dict[str, pulumi.Output[str]] = {}
        if args.aws is not None:
            ids = self._copy_amis(name, args, args.aws)
        elif args.azure is not None:
            ids = self._gallery(name, args, args.azure)
        self.by_tier = ids
        self.image_ids = pulumi.Output.all(**ids) if ids else pulumi.Output.from_input({})
        self.register_outputs({"image_ids": self.image_ids})

    def _copy_amis(self, name: str, args: VmImagesArgs, cloud: AwsImagesArgs) -> dict[str, pulumi.Output[str]]:
        ids: dict[str, pulumi.Output[str]] = {}
        for tier in args.tiers:
            copy = aws.ec2.AmiCopy(
                f"{name}-{tier.name}",
                name=f"{args.name_prefix}-{tier.name}-dr",
                description=f"drctl {tier.name} image for the recovery region",
                source_ami_id=cloud.source_amis[tier.name],
                source_ami_region=cloud.source_region,
                # The source may be unencrypted; the copy that recovery boots from never is.
                encrypted=True,
                tags=tags(args.tags, "image", tier.name),
                opts=on(cloud.recovery, self),
            )
            ids[tier.name] = copy.id
            self.root_device_names[tier.name] = copy.root_device_name
        return ids

    def _gallery(self, name: str, args: VmImagesArgs, cloud: AzureImagesArgs) -> dict[str, pulumi.Output[str]]:
        opts = on(cloud.provider, self)
        # Gallery, definitions and versions share the source images' region: Azure refuses a version whose
        # source is elsewhere ("Source ... is not found. Please check source exists, and is in the same region
        # as gallery image version being created"), and requires that region among its target regions.
        gallery = azure_native.compute.Gallery(
            f"{name}-gallery",
            gallery_name=compact(f"{args.name_prefix}gallery", 60),
            resource_group_name=cloud.resource_group_name,
            location=cloud.source_location,
            description="drctl recovery images",
            tags=tags(args.tags, "image"),
            opts=opts,
        )
        ids: dict[str, pulumi.Output[str]] = {}
        for tier in args.tiers:
            definition = azure_native.compute.GalleryImage(
                f"{name}-{tier.name}",
                gallery_name=gallery.name,
                gallery_image_name=tier.name,
                resource_group_name=cloud.resource_group_name,
                location=cloud.source_location,
                os_type=azure_native.compute.OperatingSystemTypes.WINDOWS
                if tier.os_type == "windows"
                else azure_native.compute.OperatingSystemTypes.LINUX,
                os_state=azure_native.compute.OperatingSystemStateTypes.GENERALIZED,
                # Must match the source image, and cannot change once the definition exists.
                hyper_v_generation=cloud.hyper_v_generations[tier.name],
                identifier=azure_native.compute.GalleryImageIdentifierArgs(
                    publisher=args.name_prefix, offer="drctl", sku=tier.name
                ),
                tags=tags(args.tags, "image", tier.name),
                opts=opts,
            )
            version = azure_native.compute.GalleryImageVersion(
                f"{name}-{tier.name}-{IMAGE_VERSION}",
                gallery_name=gallery.name,
                gallery_image_name=definition.name,
                gallery_image_version_name=IMAGE_VERSION,
                resource_group_name=cloud.resource_group_name,
                location=cloud.source_location,
                storage_profile=azure_native.compute.GalleryImageVersionStorageProfileArgs(
                    source=azure_native.compute.GalleryArtifactVersionFullSourceArgs(
                        id=cloud.source_image_ids[tier.name]
                    )
                ),
                publishing_profile=azure_native.compute.GalleryImageVersionPublishingProfileArgs(
                    target_regions=[
                        azure_native.compute.TargetRegionArgs(name=region, regional_replica_count=1)
                        for region in cloud.target_regions
                    ]
                ),
                tags=tags(args.tags, "image", tier.name),
                opts=opts,
            )
            ids[tier.name] = version.id
        return ids
