"""One place chooses compute and DNS providers: the actions and the drill cleanup never name a provider module,
and the choice refuses, in one line, what it cannot reach."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from orchestrator.errors import Permanent
from orchestrator.providers import choice
from orchestrator.providers.route53 import Route53Dns

REPO = Path(__file__).resolve().parents[2]
PROVIDER_MODULES = {
    "orchestrator.providers.aws_ec2",
    "orchestrator.providers.azure_compute",
    "orchestrator.providers.azure_dns",
    "orchestrator.providers.azure_traffic_manager",
    "orchestrator.providers.route53",
}


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(
    "path",
    sorted([*(REPO / "orchestrator" / "actions").glob("*.py"), *(REPO / "orchestrator" / "drill").glob("*.py")]),
    ids=lambda p: p.name,
)
def test_actions_and_the_drill_never_pick_a_provider_themselves(path: Path) -> None:
    assert not imported_modules(path) & PROVIDER_MODULES, f"{path.name} imports a provider; ask providers.choice"


def test_azure_compute_without_a_resource_group_or_location_is_refused() -> None:
    with pytest.raises(Permanent, match="needs resource_group and region"):
        choice.compute_service({}, "azure", "westeurope", None)
    with pytest.raises(Permanent, match="needs resource_group and region"):
        choice.compute_service({}, "azure", None, "rg")


@pytest.mark.parametrize("provider", ["azure_dns", "traffic_manager"])
def test_azure_dns_without_a_resource_group_is_refused(provider: choice.DnsProvider) -> None:
    with pytest.raises(Permanent, match=f"{provider} needs resource_group"):
        choice.dns_service({}, provider)


def test_route53_is_chosen_for_route53() -> None:
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    assert isinstance(choice.dns_service(env, "route53"), Route53Dns)
