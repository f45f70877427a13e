"""Backups, the keys that decrypt them and the resource group around the vault survive `pulumi destroy`.

Pulumi's mocks never see resource options, so these tests capture them with a stack transformation registered
inside the program they run: it sees every resource's options as the program passed them.
"""

from __future__ import annotations

import functools
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest

from stacks.components.replicated_storage import AwsStorageArgs, ReplicatedBackupStorage, ReplicatedBackupStorageArgs
from stacks.config import ConfigError, ProtectionConfig, StorageConfig, parse_config
from tests.stacks.pulumi_harness import STACK_NAMES, STACKS_DIR, Run, run, stack_config
from tests.stacks.samples import TAGS, aws_pair, azure_target, checked_in, raw_config

BUCKET, KMS_KEY = "aws:s3/bucket:Bucket", "aws:kms/key:Key"
ACCOUNT, CONTAINER = "azure-native:storage:StorageAccount", "azure-native:storage:BlobContainer"
RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
# What holds backups or decrypts them, and the settings that keep a retained bucket or account safe.
GUARDED = frozenset(
    {
        BUCKET,
        KMS_KEY,
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        ACCOUNT,
        "azure-native:storage:BlobServiceProperties",
        CONTAINER,
        RESOURCE_GROUP,
    }
)


@dataclass(frozen=True)
class Registered:
    """One resource as the program constructed it, with the options mocks never see."""

    type: str
    name: str
    resource: pulumi.Resource
    opts: pulumi.ResourceOptions

    @property
    def guard(self) -> tuple[bool | None, bool | None]:
        return self.opts.protect, self.opts.retain_on_delete


@dataclass(frozen=True)
class Captured:
    run: Run
    registered: tuple[Registered, ...]

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.registered if r.type == type_]

    def named(self, type_: str, name: str) -> Registered:
        (match,) = [r for r in self.of_type(type_) if r.name == name]
        return match


def capturing(program: Callable[[], Mapping[str, Any] | None], **kwargs: Any) -> Captured:
    """:func:`pulumi_harness.run` of ``program``, recording every resource's options as it is constructed."""
    seen: list[Registered] = []

    def record(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        seen.append(Registered(args.type_, args.name, args.resource, args.opts))
        return None  # options unchanged: the program runs exactly as Pulumi would run it

    def wrapped() -> Mapping[str, Any] | None:
        pulumi.runtime.register_stack_transformation(record)
        return program()

    result = run(wrapped, **kwargs)
    return Captured(result, tuple(seen))


@functools.cache
def captured_stack(stack: str) -> Captured:
    """``stacks/__main__.py`` for a checked-in stack, as Pulumi runs it, with every resource's options."""

    def main() -> None:
        runpy.run_path(str(STACKS_DIR / "__main__.py"), run_name="__main__")

    return capturing(main, stack=stack, config=stack_config(stack))


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_backups_and_their_keys_carry_the_stacks_protection(stack: str) -> None:
    protection = checked_in(stack).protection
    captured = captured_stack(stack)
    guarded = [r for r in captured.registered if r.type in GUARDED]
    assert {(r.type, r.name, r.guard) for r in guarded} == {
        (r.type, r.name, (protection.protect, protection.retain_on_delete)) for r in guarded
    }
    # Exactly the data, its keys and its safety settings: the rest of the estate is disposable.
    others = [r for r in captured.registered if r.type not in GUARDED and r.type.startswith(("aws:", "azure"))]
    assert others
    assert [(r.type, r.name) for r in others if r.opts.protect or r.opts.retain_on_delete] == []


@pytest.mark.parametrize("stack", ["aws-to-azure", "azure-to-aws"])
def test_real_stacks_protect_and_retain_every_bucket_key_vault_and_container(stack: str) -> None:
    captured = captured_stack(stack)
    expected = {BUCKET: 2, KMS_KEY: 2, ACCOUNT: 1, CONTAINER: 1, RESOURCE_GROUP: 1}
    for type_, count in expected.items():
        registered = captured.of_type(type_)
        assert len(registered) == count, type_
        assert {r.guard for r in registered} == {(True, True)}, type_


def test_the_lab_can_be_destroyed() -> None:
    # LocalStack is rebuilt at will and the lab test destroys the stack it deploys.
    assert checked_in("lab").protection == ProtectionConfig(protect=False, retain_on_delete=False)
    captured = captured_stack("lab")
    assert captured.of_type(BUCKET)
    assert [r.name for r in captured.registered if r.opts.protect or r.opts.retain_on_delete] == []
    assert "protect: false" in (STACKS_DIR / "Pulumi.lab.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "protection",
    [ProtectionConfig(), ProtectionConfig(protect=False), ProtectionConfig(retain_on_delete=False)],
    ids=["both", "retain-only", "protect-only"],
)
def test_each_option_is_applied_as_configured(protection: ProtectionConfig) -> None:
    def program() -> None:
        providers = aws_pair()
        ReplicatedBackupStorage(
            "vault",
            ReplicatedBackupStorageArgs(
                name_prefix="drctl-test",
                settings=StorageConfig(aws_encryption="aws:kms", object_lock_days=7),
                tags=TAGS,
                aws=AwsStorageArgs(providers.primary, providers.recovery),
                azure=azure_target(),
                protection=protection,
            ),
        )

    captured = capturing(program)
    expected = (protection.protect, protection.retain_on_delete)
    for name in ("vault-primary", "vault-replica"):
        assert captured.named(BUCKET, name).guard == expected
        assert captured.named(KMS_KEY, name).guard == expected
    (account,) = captured.of_type(ACCOUNT)
    (container,) = captured.of_type(CONTAINER)
    assert account.guard == container.guard == expected
    # Guarding must not cost the container its wait for the blob service (soft delete, versioning).
    (service,) = captured.of_type("azure-native:storage:BlobServiceProperties")
    assert container.opts.depends_on == [service.resource]


def test_components_protect_by_default() -> None:
    assert ReplicatedBackupStorageArgs("p", StorageConfig(), TAGS).protection == ProtectionConfig(True, True)
    raw = raw_config("aws-to-azure")
    del raw["protection"]
    assert parse_config(raw).protection == ProtectionConfig(protect=True, retain_on_delete=True)


def test_a_misspelt_protection_key_is_named() -> None:
    raw = raw_config("lab")
    raw["protection"] = {"protected": False}
    with pytest.raises(ConfigError, match=r"drctl:protection\.protected"):
        parse_config(raw)
