"""The lab seeder and the Pulumi ``lab`` stack describe their estates with the same outputs.

The seeder's outputs come from :func:`localstack.seed.outputs.build_outputs`, a pure function of the lab stack's
configuration and the cloud ids a seeding produced, so it is checked here without a network, against what the
``lab`` program exports under the mocks of :mod:`tests.stacks.pulumi_harness`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localstack.seed.config import load_lab_config
from localstack.seed.outputs import DnsIds, NetworkIds, SeededEstate, build_outputs, validated
from orchestrator.runbook.loader import load_runbook
from orchestrator.stack_outputs import StackOutputs, contract_field_names
from stacks.config import StackConfig
from tests.stacks.pulumi_harness import run_stack

# Outputs decided by configuration alone: both sides must give the very same value.
CONFIGURED = (
    "schema_version",
    "stack",
    "primary_cloud",
    "recovery_cloud",
    "primary_region",
    "recovery_region",
    "backup_bucket_region",
    "backup_replica_region",
    "standby_mode",
    "standby_tier_order",
    "dns_provider",
    "production_record_name",
    "drill_record_name",
)
PER_TIER = ("security_group_ids", "drill_security_group_ids", "image_ids", "standby_instance_ids")


def network(kind: str, config: StackConfig, public: bool) -> NetworkIds:
    count = config.network.az_count
    return NetworkIds(
        network_id=f"vpc-{kind}",
        private_subnet_ids=[f"subnet-{kind}-private-{i}" for i in range(count)],
        security_group_ids={t: f"sg-{kind}-{t}" for t in config.tier_names},
        public_subnet_ids=[f"subnet-{kind}-public-{i}" for i in range(count)] if public else [],
    )


def sample_estate(config: StackConfig) -> SeededEstate:
    """Ids shaped like a real seeding's, derived from the configuration only."""
    return SeededEstate(
        backup_bucket="drctl-lab-backups",
        replica_bucket="drctl-lab-backups-replica",
        recovery=network("recovery", config, public=True),
        drill=network("drill", config, public=False),
        image_ids={t: f"ami-{t}" for t in config.tier_names},
        standby_instance_ids={t.name: [f"i-{t.name}-{n}" for n in range(t.count)] for t in config.tiers},
        dns=DnsIds(zone_id="ZPRODUCTION", health_check_id="hc-primary", drill_zone_id="ZDRILL"),
        orchestrator_role_arn="arn:aws:iam::000000000000:role/drctl-lab-orchestrator",
    )


def kind(value: Any) -> str:
    """What a runbook can rely on about a field: absent (null), empty, or present."""
    if value is None:
        return "null"
    if isinstance(value, list | dict | str) and not value:
        return "empty"
    return "present"


REPO_RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"


@pytest.fixture(scope="module")
def seeded() -> dict[str, Any]:
    config = load_lab_config()
    return build_outputs(config, sample_estate(config))


@pytest.fixture
def lab_exports() -> dict[str, Any]:
    return dict(run_stack("lab").exports)


def test_seeder_writes_exactly_the_contract_fields(seeded: dict[str, Any]) -> None:
    contract = contract_field_names()
    assert set(seeded) - contract == set(), "written by the seeder but not in the contract"
    assert contract - set(seeded) == set(), "in the contract but not written by the seeder"


def test_seeder_nulls_and_empties_exactly_what_the_lab_stack_does(
    seeded: dict[str, Any], lab_exports: dict[str, Any]
) -> None:
    assert {f: kind(v) for f, v in seeded.items()} == {f: kind(lab_exports.get(f)) for f in seeded}
    # Spelled out, because the Azure vault is the field most tempting to fill: the lab stack has none.
    nulls = {f for f, v in seeded.items() if v is None}
    assert nulls == {f for f, v in lab_exports.items() if v is None}
    assert "vault_container" in nulls


def test_seeder_agrees_with_the_lab_stack_on_every_configured_value(
    seeded: dict[str, Any], lab_exports: dict[str, Any]
) -> None:
    assert {f: seeded[f] for f in CONFIGURED} == {f: lab_exports[f] for f in CONFIGURED}
    for field in PER_TIER:
        assert list(seeded[field]) == list(lab_exports[field]), field
    for field in ("recovery_subnet_ids", "recovery_public_subnet_ids", "drill_subnet_ids"):
        assert len(seeded[field]) == len(lab_exports[field]), field


def test_seeder_outputs_satisfy_the_contract(seeded: dict[str, Any]) -> None:
    outputs = validated(seeded)
    assert outputs.stack == "lab"
    assert outputs.model_dump(mode="json") == seeded


@pytest.mark.parametrize("runbook", sorted((REPO_RUNBOOKS / "valid").glob("*lab*.yaml")), ids=lambda p: p.name)
def test_lab_runbooks_resolve_every_stack_reference_against_the_seeded_outputs(
    seeded: dict[str, Any], runbook: Path
) -> None:
    """The third side of the contract: a runbook's ${stack.NAME} references resolve against what the lab
    seeder writes (and so against what the lab stack exports, checked above)."""
    loaded = load_runbook(runbook, stack=StackOutputs.model_validate(seeded))
    assert loaded.runbook.spec.steps
