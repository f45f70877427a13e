"""The typed stack configuration, parsed once from ``stacks/Pulumi.<stack>.yaml``.

Every key lives in the ``drctl`` namespace. Parsing is all-or-nothing: :func:`load_config` either returns a
complete, cross-checked :class:`StackConfig` or raises :class:`ConfigError` naming every bad key, so
``pulumi preview`` fails before a single resource is registered.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import field, fields
from typing import Annotated, Any, Literal

import pulumi
from pydantic import ConfigDict, Field, StringConstraints, ValidationError
from pydantic.dataclasses import dataclass

NAMESPACE = "drctl"

Cloud = Literal["aws", "azure"]
# Lower-case and short because tier names end up inside S3, Azure and IAM resource names.
TierName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]{0,9}$")]
NamePrefix = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,14}[a-z0-9]$")]
Port = Annotated[int, Field(ge=1, le=65535)]
HyperVGeneration = Literal["V1", "V2"]
# One DNS label: Traffic Manager names and record names end up as labels of a public DNS name.
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Route 53 hosted zone ids as the API returns them without the "/hostedzone/" prefix, e.g. Z0123456789ABCDEFGHIJ.
ROUTE53_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
# The derived Traffic Manager name is "<prefix>-<record_name>-<8 hex>", see failover_dns.traffic_manager_name.
TRAFFIC_MANAGER_SUFFIX = 9
ADMIN_PORTS: Mapping[str, int] = {"linux": 22, "windows": 3389}
_ANYWHERE = ("0.0.0.0/0", "::/0")
_SECTION = ConfigDict(extra="forbid")


class ConfigError(ValueError):
    """The stack configuration is unusable; the message names each key and how to fix it."""


@dataclass(frozen=True, config=_SECTION)
class TierConfig:
    """One application tier. The order of ``drctl:tiers`` is the order runbooks start them in."""

    name: TierName
    port: Port
    # "internet" or the name of the tier whose security group may reach ``port``.
    ingress_from: str
    count: Annotated[int, Field(ge=0, le=20)] = 1
    os_type: Literal["linux", "windows"] = "linux"
    instance_type: str = "t3.medium"
    vm_size: str = "Standard_B2s"

    @property
    def admin_port(self) -> int:
        return ADMIN_PORTS[self.os_type]


@dataclass(frozen=True, config=_SECTION)
class AwsConfig:
    region: str
    recovery_region: str
    localstack_endpoint: str | None = None
    # Who may assume the orchestrator role; the account root when unset.
    orchestrator_trusted_principal: str | None = None


@dataclass(frozen=True, config=_SECTION)
class AzureConfig:
    location: str
    recovery_location: str
    orchestrator_principal_id: str
    ssh_public_key: str
    subscription_id: str | None = None
    admin_username: str = "drctl"


@dataclass(frozen=True, config=_SECTION)
class StorageConfig:
    aws_encryption: Literal["aws:kms", "AES256"] = "aws:kms"
    # S3 rejects STANDARD_IA transitions earlier than 30 days; the cross-key rules are in _lifecycle_problems.
    ia_after_days: Annotated[int, Field(ge=30)] = 30
    glacier_after_days: Annotated[int, Field(ge=1)] = 90
    noncurrent_glacier_after_days: Annotated[int, Field(ge=1)] = 30
    noncurrent_expire_days: Annotated[int, Field(ge=1)] = 365
    object_lock_days: Annotated[int, Field(ge=0)] = 0
    azure_sku: Literal["Standard_GRS", "Standard_RAGRS", "Standard_GZRS"] = "Standard_GRS"
    soft_delete_days: Annotated[int, Field(ge=1, le=365)] = 30
    immutability_days: Annotated[int, Field(ge=0)] = 0
    container_name: str = "backups"


@dataclass(frozen=True, config=_SECTION)
class ImagesConfig:
    aws_source_region: str | None = None
    aws_source_amis: dict[str, str] = field(default_factory=dict)
    azure_source_image_ids: dict[str, str] = field(default_factory=dict)
    # Where the source images live. Azure creates a gallery image version only in its source's region, so the
    # gallery goes there and replicates to the recovery location; the id alone does not say which region it is.
    azure_source_location: str | None = None
    # Per tier, the Hyper-V generation of the source image: a gallery definition must match its source.
    azure_hyper_v_generations: dict[str, HyperVGeneration] = field(default_factory=dict)
    azure_replica_regions: tuple[str, ...] = ()


@dataclass(frozen=True, config=_SECTION)
class NetworkConfig:
    admin_cidrs: tuple[str, ...]
    recovery_cidr: str = "10.60.0.0/16"
    drill_cidr: str = "10.61.0.0/16"
    az_count: Annotated[int, Field(ge=1, le=3)] = 2


@dataclass(frozen=True, config=_SECTION)
class ComputeConfig:
    aws_mode: Literal["stopped_instances", "launch_templates"] = "stopped_instances"
    azure_mode: Literal["vmss", "vm"] = "vm"


@dataclass(frozen=True, config=_SECTION)
class DnsConfig:
    provider: Literal["route53", "traffic_manager", "azure_dns"]
    zone_name: str
    primary_endpoint: str
    recovery_endpoint: str
    drill_endpoint: str
    record_name: str = "app"
    # route53: the existing public hosted zone the failover records go into.
    zone_id: str | None = None
    # route53 and azure_dns: create zone_name instead. Nothing resolves it until its parent delegates to the
    # new zone's name servers, so this is an explicit choice, never a fallback.
    create_zone: bool = False
    # traffic_manager: the profile's label under trafficmanager.net, which must be unique across all of Azure.
    # Unset, a label unique to this subscription and resource group is derived.
    traffic_manager_name: str | None = None
    health_check_path: str = "/healthz"
    health_check_port: Port = 443
    drill_zone_name: str = "drill.internal"

    @property
    def production_fqdn(self) -> str:
        return f"{self.record_name}.{self.zone_name}"

    @property
    def drill_fqdn(self) -> str:
        return f"{self.record_name}.{self.drill_zone_name}"


@dataclass(frozen=True, config=_SECTION)
class ProtectionConfig:
    """What ``pulumi destroy``, or a change that replaces a resource, may do to backup data and its keys."""

    # Pulumi refuses to delete or replace a protected resource until `pulumi state unprotect`.
    protect: bool = True
    # Pulumi forgets a retained resource instead of deleting it from the cloud.
    retain_on_delete: bool = True


@dataclass(frozen=True, config=_SECTION)
class StackConfig:
    stack: str
    primary_cloud: Cloud
    recovery_cloud: Cloud
    name_prefix: NamePrefix
    tiers: Annotated[tuple[TierConfig, ...], Field(min_length=1)]
    network: NetworkConfig
    dns: DnsConfig
    aws: AwsConfig | None = None
    azure: AzureConfig | None = None
    storage: StorageConfig = field(default_factory=StorageConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    protection: ProtectionConfig = field(default_factory=ProtectionConfig)

    @property
    def uses_aws(self) -> bool:
        return "aws" in (self.primary_cloud, self.recovery_cloud)

    @property
    def uses_azure(self) -> bool:
        return "azure" in (self.primary_cloud, self.recovery_cloud)

    @property
    def tier_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)

    @property
    def primary_region(self) -> str:
        return self._region_of(self.primary_cloud, recovery=False)

    @property
    def recovery_region(self) -> str:
        return self._region_of(self.recovery_cloud, recovery=True)

    def _region_of(self, cloud: Cloud, *, recovery: bool) -> str:
        if cloud == "aws" and self.aws is not None:
            return self.aws.recovery_region if recovery else self.aws.region
        if cloud == "azure" and self.azure is not None:
            return self.azure.recovery_location if recovery else self.azure.location
        raise ConfigError(f"drctl:{cloud}: missing")


ConfigGetter = Callable[[str], str | None]


def load_config(stack: str, get: ConfigGetter | None = None) -> StackConfig:
    """Read every ``drctl:*`` key once and return the validated configuration.

    ``get`` defaults to ``pulumi.Config("drctl").get``; tests pass a dict's ``get`` instead.
    """
    if get is None:
        get = pulumi.Config(NAMESPACE).get
    raw: dict[str, Any] = {"stack": stack}
    for f in fields(StackConfig):
        if f.name == "stack":
            continue
        value = get(f.name)
        if value is None:
            continue
        decoded = _decode(value)
        # Pulumi.yaml defaults every optional section to {} (a declared key without a default is required in
        # every stack), so an empty cloud section is the same as none: that cloud is not used.
        if decoded == {} and f.default is None:
            continue
        raw[f.name] = decoded
    return parse_config(raw)


def parse_config(raw: Mapping[str, Any]) -> StackConfig:
    try:
        config = StackConfig(**raw)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
    except TypeError as err:  # an unknown top-level key
        raise ConfigError(f"invalid stack config: {err}") from None
    problems = consistency_problems(config)
    if problems:
        raise ConfigError("invalid stack config: " + "; ".join(problems))
    return config


def _decode(value: str) -> Any:
    # Pulumi hands structured values to the program as JSON text and plain strings verbatim.
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        parts.append(f"{NAMESPACE}:{key}: {e['msg']}")
    fix = "fix it in stacks/Pulumi.<stack>.yaml or with `pulumi config set --path`"
    return "invalid stack config: " + "; ".join(parts) + f" ({fix})"


def consistency_problems(config: StackConfig) -> list[str]:
    """Rules that span several keys; each problem names the key to change."""
    problems: list[str] = []
    if config.uses_aws and config.aws is None:
        problems.append("drctl:aws is required because a cloud is aws")
    if config.uses_azure and config.azure is None:
        problems.append("drctl:azure is required because a cloud is azure")
    problems += _tier_problems(config)
    problems += _network_problems(config.network)
    problems += _dns_problems(config)
    problems += _drill_endpoint_problems(config)
    problems += _image_problems(config)
    problems += _lifecycle_problems(config.storage)
    if config.recovery_cloud == "azure" and config.compute.azure_mode == "vmss":
        # The stack and the actions must agree: compute.start starts (and compute.stop deallocates) VMs, and
        # no action scales a scale set yet, so a failover could never bring a capacity-0 scale set up.
        problems.append(
            "drctl:compute.azure_mode vmss: no drctl action scales a scale set yet, so a failover could not start "
            "the standby; use vm (deallocated VMs, which compute.start starts)"
        )
    return problems


def _tier_problems(config: StackConfig) -> list[str]:
    names = config.tier_names
    problems = [f"drctl:tiers: tier {n!r} appears twice" for n in sorted(set(names)) if names.count(n) > 1]
    for tier in config.tiers:
        if tier.ingress_from != "internet" and tier.ingress_from not in names:
            problems.append(
                f"drctl:tiers: {tier.name}.ingress_from {tier.ingress_from!r} must be 'internet' or a tier name"
            )
        if tier.os_type == "windows" and config.recovery_cloud == "azure":
            # Windows scale sets need an admin password secret, which these stacks do not manage yet.
            problems.append(f"drctl:tiers: {tier.name}.os_type windows is not supported on Azure recovery yet")
    return problems


def _network_problems(network: NetworkConfig) -> list[str]:
    problems: list[str] = []
    nets: dict[str, ipaddress.IPv4Network] = {}
    for key in ("recovery_cidr", "drill_cidr"):
        try:
            nets[key] = ipaddress.IPv4Network(getattr(network, key))
        except ValueError as err:
            problems.append(f"drctl:network.{key}: {err}")
    if len(nets) == 2 and nets["recovery_cidr"].overlaps(nets["drill_cidr"]):
        problems.append("drctl:network.drill_cidr must not overlap recovery_cidr, or drills could reach it")
    for cidr in network.admin_cidrs:
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError as err:
            problems.append(f"drctl:network.admin_cidrs: {err}")
            continue
        if str(net) in _ANYWHERE:
            problems.append(f"drctl:network.admin_cidrs: {cidr} opens SSH/RDP to the internet; list your VPN ranges")
    return problems


def is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _dns_problems(config: StackConfig) -> list[str]:
    dns = config.dns
    provider = dns.provider
    if provider == "route53" and not config.uses_aws:
        return ["drctl:dns.provider route53 needs aws as a cloud"]
    if provider == "route53" and is_ipv4(dns.primary_endpoint) != is_ipv4(dns.recovery_endpoint):
        # Route 53 pairs PRIMARY and SECONDARY failover records only when both have the same type.
        return ["drctl:dns.primary_endpoint and recovery_endpoint must both be IPv4 addresses or both host names"]
    if provider in ("traffic_manager", "azure_dns") and not config.uses_azure:
        return [f"drctl:dns.provider {provider} needs azure as a cloud"]
    problems: list[str] = []
    if not DNS_LABEL.match(dns.record_name):
        problems.append(
            f"drctl:dns.record_name {dns.record_name!r} must be one DNS label: 1-63 of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit"
        )
    if provider == "route53":
        problems += _route53_zone_problems(dns)
    elif provider == "azure_dns" and not dns.create_zone:
        # Only a zone this stack creates is supported; an existing Azure DNS zone may live in any resource group.
        problems.append(
            f"drctl:dns.create_zone must be true for azure_dns: the stack creates the public zone {dns.zone_name}, "
            "and you must then delegate it to the name servers `pulumi up` prints"
        )
    elif provider == "traffic_manager":
        problems += _traffic_manager_problems(config)
    if provider != "route53" and dns.zone_id is not None:
        problems.append(f"drctl:dns.zone_id applies only to route53, not {provider}; remove it")
    if provider == "traffic_manager" and dns.create_zone:
        problems.append("drctl:dns.create_zone applies only to route53 and azure_dns, not traffic_manager; remove it")
    if provider != "traffic_manager" and dns.traffic_manager_name is not None:
        problems.append(f"drctl:dns.traffic_manager_name applies only to traffic_manager, not {provider}; remove it")
    return problems


def _route53_zone_problems(dns: DnsConfig) -> list[str]:
    if dns.zone_id is not None and dns.create_zone:
        return ["drctl:dns.zone_id and create_zone are exclusive: use the existing zone or create one, not both"]
    if dns.zone_id is None and not dns.create_zone:
        # A zone created silently answers nobody until its parent delegates to it: failover would move nothing.
        return [
            f"drctl:dns.zone_id is required for route53: the id of the public hosted zone {dns.zone_name} that "
            f"resolvers already reach (`aws route53 list-hosted-zones-by-name --dns-name {dns.zone_name}`); "
            "or set drctl:dns.create_zone true and delegate the new zone to the name servers `pulumi up` prints"
        ]
    if dns.zone_id is not None and not ROUTE53_ZONE_ID.match(dns.zone_id):
        return [f"drctl:dns.zone_id {dns.zone_id!r} is not a Route 53 hosted zone id like Z0123456789ABCDEFGHIJ"]
    return []


def _traffic_manager_problems(config: StackConfig) -> list[str]:
    dns = config.dns
    if dns.traffic_manager_name is not None:
        if DNS_LABEL.match(dns.traffic_manager_name):
            return []
        return [
            f"drctl:dns.traffic_manager_name {dns.traffic_manager_name!r} must be one DNS label under "
            "trafficmanager.net: 1-63 of a-z, 0-9 and '-', starting and ending with a letter or digit"
        ]
    derived = len(config.name_prefix) + 1 + len(dns.record_name) + TRAFFIC_MANAGER_SUFFIX
    if derived > 63:
        return [
            f"drctl:dns.record_name: the derived Traffic Manager name would be {derived} characters, over the 63 "
            "of a DNS label; shorten record_name or name_prefix, or set drctl:dns.traffic_manager_name"
        ]
    return []


def _image_problems(config: StackConfig) -> list[str]:
    images = config.images
    if config.recovery_cloud == "aws":
        return _per_tier("aws_source_amis", images.aws_source_amis, config.tier_names, "no image")
    problems = _per_tier("azure_source_image_ids", images.azure_source_image_ids, config.tier_names, "no image")
    problems += _per_tier(
        "azure_hyper_v_generations",
        images.azure_hyper_v_generations,
        config.tier_names,
        "no Hyper-V generation (V1 or V2, as `az image show --query hyperVGeneration` reports)",
    )
    if images.azure_source_location is None:
        problems.append(
            "drctl:images.azure_source_location is required: the Azure region the source images are in "
            "(`az image show --ids <id> --query location`), where the gallery must create its image versions"
        )
    return problems


def _per_tier(key: str, values: Mapping[str, object], tiers: tuple[str, ...], what: str) -> list[str]:
    problems = [f"drctl:images.{key}: {what} for tier {n!r}" for n in tiers if n not in values]
    problems += [f"drctl:images.{key}: {n!r} is not a tier" for n in sorted(set(values) - set(tiers))]
    return problems


def _lifecycle_problems(storage: StorageConfig) -> list[str]:
    """Lifecycle rules S3 refuses at `pulumi up`.

    S3 User Guide, "Transitioning objects using Amazon S3 Lifecycle", Constraints
    (docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html): a rule's
    GLACIER transition must come at least 30 days after its STANDARD_IA one. PutBucketLifecycleConfiguration
    rejects a NoncurrentVersionExpiration whose NoncurrentDays are not greater than the
    NoncurrentVersionTransition's ("'NoncurrentDays' in the NoncurrentVersionExpiration action must be greater
    than 'NoncurrentDays' in the NoncurrentVersionTransition action").
    """
    problems: list[str] = []
    earliest = storage.ia_after_days + 30
    if storage.glacier_after_days < earliest:
        problems.append(
            f"drctl:storage.glacier_after_days {storage.glacier_after_days} must be at least ia_after_days + 30 "
            f"({earliest}): S3 keeps objects 30 days in STANDARD_IA before GLACIER; raise glacier_after_days"
        )
    if storage.noncurrent_expire_days <= storage.noncurrent_glacier_after_days:
        problems.append(
            f"drctl:storage.noncurrent_expire_days {storage.noncurrent_expire_days} must be greater than "
            f"noncurrent_glacier_after_days {storage.noncurrent_glacier_after_days}: S3 rejects expiring noncurrent "
            "versions before they move to GLACIER; raise noncurrent_expire_days or lower the other"
        )
    return problems


def _drill_endpoint_problems(config: StackConfig) -> list[str]:
    # The drill record must resolve inside the drill network, never to a production address.
    try:
        endpoint = ipaddress.IPv4Address(config.dns.drill_endpoint)
        drill = ipaddress.IPv4Network(config.network.drill_cidr)
    except ValueError:
        return ["drctl:dns.drill_endpoint must be an IPv4 address inside drctl:network.drill_cidr"]
    if endpoint not in drill:
        return [f"drctl:dns.drill_endpoint {endpoint} is outside drctl:network.drill_cidr {drill}"]
    return []
