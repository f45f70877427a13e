"""Sample configuration and providers for component tests, built inside a mocked Pulumi program."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stacks.config import AwsConfig, AzureConfig, StackConfig, TierConfig, load_config
from stacks.naming import STACK_TAG
from stacks.providers import AwsProviders, AzureTarget, aws_providers, azure_provider
from tests.stacks.pulumi_harness import stack_config

TAGS = {STACK_TAG: "test"}
TIERS = (
    TierConfig(name="db", port=5432, ingress_from="app"),
    TierConfig(name="app", port=8080, ingress_from="web", count=2),
    TierConfig(name="web", port=443, ingress_from="internet", os_type="windows"),
)
RG_NAME = "drctl-test-rg"


def checked_in(stack: str) -> StackConfig:
    """The parsed ``stacks/Pulumi.<stack>.yaml``."""
    raw = stack_config(stack)
    return load_config(stack, lambda key: raw.get(f"drctl:{key}"))


def raw_config(stack: str) -> dict[str, Any]:
    """``stacks/Pulumi.<stack>.yaml``'s drctl keys, decoded, ready to be edited and re-parsed."""
    decoded: dict[str, Any] = {"stack": stack}
    for key, value in stack_config(stack).items():
        if not key.startswith("drctl:"):
            continue
        try:
            decoded[key.removeprefix("drctl:")] = json.loads(value)
        except json.JSONDecodeError:
            decoded[key.removeprefix("drctl:")] = value
    return decoded


def aws_pair() -> AwsProviders:
    return aws_providers(AwsConfig(region="us-east-1", recovery_region="us-west-2"))


def azure_target(location: str = "westeurope") -> AzureTarget:
    provider = azure_provider(
        AzureConfig(
            location=location,
            recovery_location=location,
            orchestrator_principal_id="principal",
            ssh_public_key="ssh-ed25519 AAAA test",
        )
    )
    return AzureTarget(provider, RG_NAME, location)


Edit = Callable[[dict[str, Any]], None]
"""A change to a raw stack config (the ``drctl:`` namespace stripped), for tests of its validation."""


def set_key(path: str, value: Any) -> Edit:
    """Set dotted ``path`` (``dns.zone_id``) to ``value``, making parents as needed."""

    def edit(raw: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = raw
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value

    return edit


def drop_key(path: str) -> Edit:
    """Remove dotted ``path``."""

    def edit(raw: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = raw
        for key in parents:
            node = node[key]
        del node[leaf]

    return edit
