"""Configurations the clouds reject at `pulumi up`, or that break only at failover, are refused or handled.

Each trap has a config check (one line naming the key and the fix) and a test of what the program builds.
"""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest

from stacks.components.failover_dns import traffic_manager_name
from stacks.components.failover_network import AwsNetworkArgs, FailoverNetwork, FailoverNetworkArgs
from stacks.config import ConfigError, DnsConfig, NetworkConfig, StorageConfig, parse_config
from tests.stacks import pulumi_harness
from tests.stacks.pulumi_harness import SUBSCRIPTION_ID, run, run_main, run_stack
from tests.stacks.samples import TAGS, TIERS, Edit, aws_pair, azure_target, checked_in, drop_key, raw_config, set_key
from tests.stacks.test_stacks_protection import capturing

NET = NetworkConfig(admin_cidrs=("10.200.0.0/24",), recovery_cidr="10.60.0.0/16", drill_cidr="10.61.0.0/16")


def _rejected(stack: str, *edits: Edit) -> str:
    raw = copy.deepcopy(raw_config(stack))
    for edit in edits:
        edit(raw)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- gallery images: Hyper-V generation and the source's region -------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            drop_key("images.azure_hyper_v_generations.web"),
            "drctl:images.azure_hyper_v_generations: no Hyper-V generation (V1 or V2",
        ),
        (set_key("images.azure_hyper_v_generations.web", "V3"), "drctl:images.azure_hyper_v_generations.web"),
        (set_key("images.azure_hyper_v_generations.cache", "V2"), "azure_hyper_v_generations: 'cache' is not a tier"),
        (drop_key("images.azure_source_location"), "drctl:images.azure_source_location is required"),
    ],
)
def test_gallery_images_need_each_sources_generation_and_region(edit: Edit, expected: str) -> None:
    assert expected in _rejected("aws-to-azure", edit)


def test_gallery_definitions_take_each_images_own_generation() -> None:
    result = run_stack("aws-to-azure")
    generations = {
        d.inputs["galleryImageName"]: d.inputs["hyperVGeneration"]
        for d in result.of_type("azure-native:compute:GalleryImage")
    }
    assert (
        generations
        == checked_in("aws-to-azure").images.azure_hyper_v_generations
        == {
            "db": "V2",
            "app": "V2",
            "web": "V1",
        }
    )


def test_image_versions_are_made_where_their_sources_are_and_replicated_to_recovery() -> None:
    result = run_stack("aws-to-azure")
    config = checked_in("aws-to-azure")
    assert config.azure is not None
    source, recovery = config.images.azure_source_location, config.azure.recovery_location
    assert source != recovery  # the case that used to fail: sources outside the recovery location
    for type_ in ("Gallery", "GalleryImage", "GalleryImageVersion"):
        assert {r.inputs["location"] for r in result.of_type(f"azure-native:compute:{type_}")} == {source}, type_
    for version in result.of_type("azure-native:compute:GalleryImageVersion"):
        regions = [r["name"] for r in version.inputs["publishingProfile"]["targetRegions"]]
        assert regions[0] == source
        assert recovery in regions
        assert len(regions) == len(set(regions))


# --- S3 lifecycle days --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ({"ia_after_days": 60, "glacier_after_days": 61}, "drctl:storage.glacier_after_days 61 must be at least"),
        ({"glacier_after_days": 59}, "ia_after_days + 30 (60)"),
        ({"noncurrent_expire_days": 30}, "drctl:storage.noncurrent_expire_days 30 must be greater than"),
        (
            {"noncurrent_glacier_after_days": 400, "noncurrent_expire_days": 365},
            "noncurrent_expire_days 365 must be greater than noncurrent_glacier_after_days 400",
        ),
        ({"ia_after_days": 29}, "drctl:storage.ia_after_days"),
    ],
)
def test_lifecycle_days_s3_would_reject_are_refused(storage: dict[str, Any], expected: str) -> None:
    assert expected in _rejected("lab", *(set_key(f"storage.{k}", v) for k, v in storage.items()))


def test_the_tightest_lifecycle_s3_accepts_passes() -> None:
    raw = raw_config("lab")
    raw["storage"] = {"ia_after_days": 30, "glacier_after_days": 60, "noncurrent_glacier_after_days": 1}
    raw["storage"]["noncurrent_expire_days"] = 2
    assert parse_config(raw).storage.glacier_after_days == 60
    assert parse_config({**raw_config("lab"), "storage": {}}).storage == StorageConfig()


# --- production DNS: never an undelegated public zone by default ----------------------------------------------


def test_the_azure_to_aws_stack_uses_its_existing_zone() -> None:
    result = run_stack("azure-to-aws")
    config = checked_in("azure-to-aws")
    zones = result.of_type("aws:route53/zone:Zone")
    # Only the private drill zone is created; the failover records go into the existing public zone.
    assert [z.inputs["name"] for z in zones] == [config.dns.drill_zone_name]
    assert zones[0].inputs["vpcs"]
    failover = [r for r in result.of_type("aws:route53/record:Record") if r.inputs.get("failoverRoutingPolicies")]
    assert {r.inputs["zoneId"] for r in failover} == {config.dns.zone_id}
    assert result.exports["dns_zone_id"] == config.dns.zone_id


@pytest.mark.parametrize(
    ("stack", "edits", "expected"),
    [
        ("azure-to-aws", [drop_key("dns.zone_id")], "drctl:dns.zone_id is required for route53"),
        ("azure-to-aws", [set_key("dns.create_zone", True)], "drctl:dns.zone_id and create_zone are exclusive"),
        ("azure-to-aws", [set_key("dns.zone_id", "/hostedzone/Z1")], "drctl:dns.zone_id '/hostedzone/Z1' is not"),
        ("lab", [set_key("dns.create_zone", False)], "or set drctl:dns.create_zone true"),
        ("aws-to-azure", [set_key("dns.provider", "azure_dns")], "drctl:dns.create_zone must be true for azure_dns"),
        ("aws-to-azure", [set_key("dns.zone_id", "Z123")], "drctl:dns.zone_id applies only to route53"),
        ("aws-to-azure", [set_key("dns.create_zone", True)], "drctl:dns.create_zone applies only to route53 and"),
        ("lab", [set_key("dns.traffic_manager_name", "x")], "drctl:dns.traffic_manager_name applies only to"),
    ],
)
def test_an_undelegated_zone_is_never_created_by_default(stack: str, edits: list[Edit], expected: str) -> None:
    assert expected in _rejected(stack, *edits)


def test_a_created_zone_hands_back_its_name_servers_to_delegate(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, **_: warnings.append(message))
    servers = ["ns-1.awsdns-01.org", "ns-2.awsdns-02.net"]
    real = pulumi_harness.fake_state

    def with_name_servers(type_: str, name: str, inputs: Any) -> tuple[str, dict[str, Any]]:
        id_, outputs = real(type_, name, inputs)
        if type_ == "aws:route53/zone:Zone" and "vpcs" not in inputs:
            outputs["nameServers"] = servers
        return id_, outputs

    monkeypatch.setattr(pulumi_harness, "fake_state", with_name_servers)

    def program() -> dict[str, Any]:
        p = aws_pair()
        dns = DnsConfig(
            provider="route53",
            zone_name="example.com",
            primary_endpoint="203.0.113.10",
            recovery_endpoint="198.51.100.10",
            drill_endpoint="10.61.128.10",
            create_zone=True,
        )
        args = FailoverNetworkArgs(
            "drctl-test", "aws", TIERS, NET, dns, TAGS, aws=AwsNetworkArgs(p.recovery, "us-west-2", p.primary)
        )
        production = FailoverNetwork("net", args).production_dns
        assert production.name_servers is not None
        return {"name_servers": production.name_servers}

    result = run(program)
    assert result.values["name_servers"] == servers
    assert len(warnings) == 1
    assert "example.com" in warnings[0]
    assert all(server in warnings[0] for server in servers)


# --- the root device comes from the image ------------------------------------------------------------------


def test_launch_templates_map_the_root_device_the_ami_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pulumi_harness.fake_state
    devices = {"db": "/dev/sda1", "app": "/dev/nvme0n1", "web": "/dev/xvda"}

    def with_root_devices(type_: str, name: str, inputs: Any) -> tuple[str, dict[str, Any]]:
        id_, outputs = real(type_, name, inputs)
        if type_ == "aws:ec2/amiCopy:AmiCopy":
            # What EC2 reports for the copy: Ubuntu and Windows boot from /dev/sda1, not /dev/xvda.
            outputs["rootDeviceName"] = devices[inputs["tags"]["drctl:tier"]]
        return id_, outputs

    monkeypatch.setattr(pulumi_harness, "fake_state", with_root_devices)
    result = run_main("azure-to-aws")
    templates = result.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    mapped = {t.inputs["tags"]["drctl:tier"]: t.inputs["blockDeviceMappings"][0]["deviceName"] for t in templates}
    assert mapped == devices


# --- Azure subnets of one VNet, one at a time ------------------------------------------------------------------


def test_subnets_of_one_vnet_are_created_one_after_another() -> None:
    def program() -> None:
        dns = DnsConfig(
            provider="traffic_manager",
            zone_name="example.com",
            primary_endpoint="203.0.113.10",
            recovery_endpoint="198.51.100.10",
            drill_endpoint="10.61.128.10",
        )
        FailoverNetwork("net", FailoverNetworkArgs("drctl-test", "azure", TIERS, NET, dns, TAGS, azure=azure_target()))

    captured = capturing(program)
    subnets = {r.name: r for r in captured.of_type("azure-native:network:Subnet")}
    assert set(subnets) == {"net-recovery-public", "net-recovery-private", "net-drill"}
    public, private = subnets["net-recovery-public"], subnets["net-recovery-private"]
    # Concurrent subnet writes to one VNet fail with AnotherOperationInProgress (pulumi-azure-native#699).
    assert private.opts.depends_on == [public.resource]
    assert not public.opts.depends_on
    assert not subnets["net-drill"].opts.depends_on  # alone in its VNet


# --- Traffic Manager: a globally unique label ------------------------------------------------------------------


def test_the_derived_traffic_manager_name_is_unique_per_subscription_and_group() -> None:
    name = traffic_manager_name("drctl-a2z", "app", SUBSCRIPTION_ID, "drctl-a2z-dr1234567")
    assert name.startswith("drctl-a2z-app-")
    assert len(name) == len("drctl-a2z-app") + 9
    assert name == traffic_manager_name("drctl-a2z", "app", SUBSCRIPTION_ID.upper(), "DRCTL-A2Z-DR1234567")
    assert name != traffic_manager_name("drctl-a2z", "app", SUBSCRIPTION_ID, "drctl-a2z-dr7654321")
    assert name != traffic_manager_name(
        "drctl-a2z", "app", "00000000-0000-0000-0000-0000000000bb", "drctl-a2z-dr1234567"
    )


def test_the_aws_to_azure_profile_gets_a_derived_label_not_prefix_and_record() -> None:
    result = run_stack("aws-to-azure")
    (profile,) = result.of_type("azure-native:trafficmanager:Profile")
    (group,) = result.of_type("azure-native:resources:ResourceGroup")
    label = traffic_manager_name("drctl-a2z", "app", SUBSCRIPTION_ID, group.outputs["name"])
    assert profile.inputs["dnsConfig"]["relativeName"] == label != "drctl-a2z-app"
    assert result.exports["production_record_name"] == f"{label}.trafficmanager.net"


def test_a_configured_traffic_manager_name_is_used_as_is() -> None:
    raw = raw_config("aws-to-azure")
    raw["dns"] = {**raw["dns"], "traffic_manager_name": "shop-dr-7f3a"}
    assert parse_config(raw).dns.traffic_manager_name == "shop-dr-7f3a"

    def program() -> dict[str, Any]:
        dns = DnsConfig(
            provider="traffic_manager",
            zone_name="example.com",
            primary_endpoint="203.0.113.10",
            recovery_endpoint="198.51.100.10",
            drill_endpoint="10.61.128.10",
            traffic_manager_name="shop-dr-7f3a",
        )
        args = FailoverNetworkArgs("drctl-test", "azure", TIERS, NET, dns, TAGS, azure=azure_target())
        return {"record": FailoverNetwork("net", args).production_dns.record_name}

    result = run(program)
    (profile,) = result.of_type("azure-native:trafficmanager:Profile")
    assert profile.inputs["dnsConfig"]["relativeName"] == "shop-dr-7f3a"
    assert result.values["record"] == "shop-dr-7f3a.trafficmanager.net"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            set_key("dns.traffic_manager_name", "Shop_DR"),
            "drctl:dns.traffic_manager_name 'Shop_DR' must be one DNS label",
        ),
        (set_key("dns.traffic_manager_name", "a" * 64), "must be one DNS label under trafficmanager.net"),
        (set_key("dns.traffic_manager_name", "-shop"), "drctl:dns.traffic_manager_name '-shop'"),
        (set_key("dns.record_name", "a" * 50), "drctl:dns.record_name: the derived Traffic Manager name would be"),
        (set_key("dns.record_name", "app.eu"), "drctl:dns.record_name 'app.eu' must be one DNS label"),
    ],
)
def test_traffic_manager_names_azure_would_reject_are_refused(edit: Edit, expected: str) -> None:
    assert expected in _rejected("aws-to-azure", edit)
