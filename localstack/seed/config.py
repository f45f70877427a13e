"""The lab stack's configuration (``stacks/Pulumi.lab.yaml``), read as ``pulumi up`` reads it."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from localstack.seed.errors import SeedError
from orchestrator.errors import ExitCode
from stacks.config import AwsConfig, ConfigError, NamePrefix, StackConfig, parse_config

REPO = Path(__file__).resolve().parent.parent.parent
LAB_STACK = "lab"
LAB_STACK_FILE = REPO / "stacks" / f"Pulumi.{LAB_STACK}.yaml"
DEFAULT_PREFIX = "drctl-lab"
NAMESPACE = "drctl:"


def load_lab_config(name_prefix: str | None = None, path: Path = LAB_STACK_FILE) -> StackConfig:
    """The lab stack's own configuration, validated by the same code ``pulumi up`` uses."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SeedError(f"cannot read the lab stack config {path}: {err}", ExitCode.INVALID_INPUT) from None
    raw: dict[str, Any] = {"stack": LAB_STACK}
    for key, value in (document.get("config") or {}).items():
        if key.startswith(NAMESPACE):
            raw[key.removeprefix(NAMESPACE)] = value
    if name_prefix is not None:
        check_prefix(name_prefix)
        raw["name_prefix"] = name_prefix
        if name_prefix != DEFAULT_PREFIX:
            own_networks(raw, name_prefix)
            # A stack of its own too: runbooks select instances by `drctl:stack`, and an estate's failover must
            # never start another estate's standbys (their programs would run).
            raw["stack"] = name_prefix
    try:
        config = parse_config(raw)
    except ConfigError as err:
        raise SeedError(str(err), ExitCode.INVALID_INPUT) from None
    require_aws(config)
    return config


def network_octet(prefix: str) -> int:
    """The second octet of the estate's production network; recovery and drill networks take the next two.
    The default estate keeps 127.59-61; any other prefix gets three of its own from 127.66-245, so estates
    that live side by side (a test's beside ``make drill``'s) never share a loopback address."""
    if prefix == DEFAULT_PREFIX:
        return 59
    return 66 + 3 * (zlib.crc32(prefix.encode()) % 60)


def own_networks(raw: dict[str, Any], prefix: str) -> None:
    octet = network_octet(prefix)
    network = dict(raw.get("network") or {})
    network["recovery_cidr"] = f"127.{octet + 1}.0.0/16"
    network["drill_cidr"] = f"127.{octet + 2}.0.0/16"
    raw["network"] = network
    raw["dns"] = {**(raw.get("dns") or {}), "drill_endpoint": f"127.{octet + 2}.128.10"}


def check_prefix(prefix: str) -> None:
    """The stack's own name-prefix rule, plus no ``--``: the prefix also names an Azure container."""
    try:
        TypeAdapter(NamePrefix).validate_python(prefix)
    except ValidationError:
        valid = False
    else:
        valid = "--" not in prefix
    if not valid:
        raise SeedError(
            f"--name-prefix {prefix!r} is not usable in bucket and container names: give 3 to 16 lower-case "
            "letters, digits and single dashes, starting with a letter and not ending with a dash",
            ExitCode.INVALID_INPUT,
        )


def require_aws(config: StackConfig) -> AwsConfig:
    if config.aws is None or config.primary_cloud != "aws" or config.recovery_cloud != "aws":
        raise SeedError("the seeder builds the AWS-to-AWS lab estate; the config is not aws -> aws")
    return config.aws
