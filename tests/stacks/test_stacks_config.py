"""Stack configuration: the checked-in stacks parse, and each kind of mistake is named precisely."""

from __future__ import annotations

import copy

import pulumi
import pytest

from stacks.config import ConfigError, StackConfig, load_config, parse_config
from tests.stacks.pulumi_harness import STACK_NAMES, reset_runtime, stack_config
from tests.stacks.samples import Edit, checked_in, drop_key, raw_config, set_key


def test_lab_targets_localstack_and_leaves_azure_out() -> None:
    config = checked_in("lab")
    assert config.aws is not None
    assert config.aws.localstack_endpoint == "http://127.0.0.1:4566"
    assert config.azure is None
    assert (config.primary_cloud, config.recovery_cloud) == ("aws", "aws")
    assert (config.primary_region, config.recovery_region) == ("us-east-1", "us-west-2")
    assert config.tier_names == ("db", "app", "web")


def test_aws_to_azure_recovers_on_azure_behind_traffic_manager() -> None:
    config = checked_in("aws-to-azure")
    assert (config.primary_cloud, config.recovery_cloud) == ("aws", "azure")
    assert config.aws is not None
    assert config.aws.localstack_endpoint is None
    assert config.azure is not None
    assert config.dns.provider == "traffic_manager"
    assert config.compute.azure_mode == "vm"
    assert config.recovery_region == config.azure.recovery_location


def test_azure_to_aws_recovers_on_aws_behind_route53() -> None:
    config = checked_in("azure-to-aws")
    assert (config.primary_cloud, config.recovery_cloud) == ("azure", "aws")
    assert config.dns.provider == "route53"
    assert config.compute.aws_mode == "launch_templates"
    assert config.storage.azure_sku == "Standard_GZRS"
    assert config.network.az_count == 3


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_config_is_read_through_pulumi_config(stack: str) -> None:
    reset_runtime(stack, stack_config(stack))
    config = load_config(pulumi.get_stack())
    assert isinstance(config, StackConfig)
    assert config.stack == stack
    assert config == checked_in(stack)


def test_config_is_frozen() -> None:
    config = checked_in("lab")
    with pytest.raises(AttributeError):
        config.name_prefix = "other"  # type: ignore[misc]  # the point is that assignment fails


@pytest.mark.parametrize(
    ("stack", "edit", "expected"),
    [
        ("lab", set_key("primary_cloud", "gcp"), "drctl:primary_cloud: Input should be 'aws' or 'azure'"),
        ("lab", set_key("aws.regoin", "us-east-1"), "drctl:aws.regoin"),
        ("lab", drop_key("dns.provider"), "drctl:dns.provider: Field required"),
        ("lab", drop_key("aws"), "drctl:aws is required because a cloud is aws"),
        ("lab", set_key("network.admin_cidrs", ["0.0.0.0/0"]), "0.0.0.0/0 opens SSH/RDP to the internet"),
        ("lab", set_key("network.admin_cidrs", ["10.0.0.300/8"]), "drctl:network.admin_cidrs"),
        ("lab", set_key("network.drill_cidr", "127.60.128.0/17"), "drill_cidr must not overlap recovery_cidr"),
        ("lab", set_key("dns.drill_endpoint", "203.0.113.10"), "drctl:dns.drill_endpoint 203.0.113.10 is outside"),
        ("lab", set_key("dns.recovery_endpoint", "dr.example.com"), "both be IPv4 addresses or both host names"),
        ("lab", set_key("dns.provider", "traffic_manager"), "traffic_manager needs azure as a cloud"),
        ("lab", set_key("images.aws_source_amis", {"db": "ami-1", "app": "ami-2"}), "no image for tier 'web'"),
        (
            "lab",
            set_key("tiers", [{"name": "db", "port": 5432, "ingress_from": "cache"}]),
            "'cache' must be 'internet'",
        ),
        ("lab", set_key("tiers", []), "drctl:tiers: Tuple should have at least 1 item"),
        ("lab", set_key("name_prefix", "Has Spaces"), "drctl:name_prefix"),
        ("lab", set_key("storage.ia_after_days", 7), "drctl:storage.ia_after_days"),
        ("aws-to-azure", set_key("storage.azure_sku", "Standard_LRS"), "drctl:storage.azure_sku"),
        ("aws-to-azure", set_key("compute.azure_mode", "vmss"), "no drctl action scales a scale set yet"),
        (
            "aws-to-azure",
            set_key("tiers", [{"name": "db", "port": 1433, "ingress_from": "internet", "os_type": "windows"}]),
            "db.os_type windows is not supported on Azure recovery",
        ),
    ],
)
def test_bad_config_is_rejected_with_the_key_named(stack: str, edit: Edit, expected: str) -> None:
    raw = copy.deepcopy(raw_config(stack))
    edit(raw)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_unset_sections_take_documented_defaults() -> None:
    raw = raw_config("lab")
    del raw["storage"], raw["compute"]
    config = parse_config(raw)
    assert config.storage.aws_encryption == "aws:kms"
    assert config.storage.soft_delete_days == 30
    assert config.compute.aws_mode == "stopped_instances"


def test_plain_strings_and_json_values_are_both_understood() -> None:
    raw = stack_config("lab")
    raw["drctl:network"] = '{"admin_cidrs": ["10.9.0.0/16"], "az_count": "3", "drill_cidr": "127.61.0.0/16"}'
    config = load_config("lab", lambda key: raw.get(f"drctl:{key}"))
    assert config.primary_cloud == "aws"
    assert config.network.admin_cidrs == ("10.9.0.0/16",)
    assert config.network.az_count == 3
