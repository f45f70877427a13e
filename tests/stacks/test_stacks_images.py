"""VmImages: encrypted AMI copies in the recovery region, or a gallery replicated to the target regions."""

from __future__ import annotations

from typing import Any

from stacks.components.vm_images import AwsImagesArgs, AzureImagesArgs, VmImages, VmImagesArgs
from stacks.config import HyperVGeneration
from tests.stacks.pulumi_harness import Run, run
from tests.stacks.samples import TAGS, TIERS, aws_pair, azure_target

AMIS = {"db": "ami-0000000000000000d", "app": "ami-000000000000000a0", "web": "ami-00000000000000we0"}
SOURCES = {t.name: f"/subscriptions/s/resourceGroups/img/providers/Microsoft.Compute/images/{t.name}" for t in TIERS}
GENERATIONS: dict[str, HyperVGeneration] = {"db": "V2", "app": "V1", "web": "V2"}


def _aws() -> Run:
    def program() -> dict[str, Any]:
        providers = aws_pair()
        images = VmImages(
            "img", VmImagesArgs("drctl-test", TIERS, TAGS, aws=AwsImagesArgs(providers.recovery, "us-east-1", AMIS))
        )
        return {"image_ids": images.image_ids, "root_devices": images.root_device_names}

    return run(program)


def _azure() -> Run:
    def program() -> dict[str, Any]:
        target = azure_target("northeurope")
        # Sources in westeurope, recovery in northeurope, and one more replica in swedencentral.
        args = AzureImagesArgs(
            target.provider,
            target.resource_group_name,
            target.location,
            SOURCES,
            source_location="westeurope",
            hyper_v_generations=GENERATIONS,
            replica_regions=("swedencentral", "northeurope"),
        )
        images = VmImages("img", VmImagesArgs("drctl-test", TIERS, TAGS, azure=args))
        return {"image_ids": images.image_ids}

    return run(program)


def test_amis_are_copied_encrypted_into_the_recovery_region() -> None:
    result = _aws()
    copies = {r.name: r for r in result.of_type("aws:ec2/amiCopy:AmiCopy")}
    assert set(copies) == {"img-db", "img-app", "img-web"}
    for tier, ami in AMIS.items():
        copy = copies[f"img-{tier}"]
        assert copy.inputs["encrypted"] is True
        assert copy.inputs["sourceAmiId"] == ami
        assert copy.inputs["sourceAmiRegion"] == "us-east-1"
        assert copy.inputs["tags"]["drctl:tier"] == tier
        assert Run.provider_name(copy) == "aws-recovery"
    assert result.values["image_ids"] == {t: copies[f"img-{t}"].id for t in AMIS}
    # Read from each copy, never assumed; the mocks echo inputs only, so the copies report none here.
    assert set(result.values["root_devices"]) == set(AMIS)


def test_gallery_holds_one_generalized_definition_per_tier() -> None:
    result = _azure()
    (gallery,) = result.of_type("azure-native:compute:Gallery")
    definitions = {r.inputs["galleryImageName"]: r.inputs for r in result.of_type("azure-native:compute:GalleryImage")}
    assert set(definitions) == {"db", "app", "web"}
    for tier, inputs in definitions.items():
        assert inputs["galleryName"] == gallery.outputs["name"]
        assert inputs["osState"] == "Generalized"
        assert inputs["hyperVGeneration"] == GENERATIONS[tier]
    assert definitions["web"]["osType"] == "Windows"
    assert definitions["db"]["osType"] == "Linux"


def test_image_versions_replicate_to_every_target_region_once() -> None:
    result = _azure()
    versions = result.of_type("azure-native:compute:GalleryImageVersion")
    assert len(versions) == 3
    for version in versions:
        tier = version.inputs["galleryImageName"]
        assert version.inputs["storageProfile"]["source"]["id"] == SOURCES[tier]
        regions = [r["name"] for r in version.inputs["publishingProfile"]["targetRegions"]]
        # The source region first (Azure requires it), then recovery, then the extra replicas, each once.
        assert regions == ["westeurope", "northeurope", "swedencentral"]
    assert result.values["image_ids"] == {v.inputs["galleryImageName"]: v.id for v in versions}
