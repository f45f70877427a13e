"""The runbooks shipped in ``runbooks/`` load and plan against both shapes of stack outputs (the lab's and a
real AWS-to-Azure estate's), and a drill of each would stay inside the drill network and zone."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.runbook.loader import load_runbook
from orchestrator.runbook.plan import make_plan
from orchestrator.stack_outputs import load_stack_outputs

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "runbooks").glob("*.yaml"))
OUTPUTS = sorted((REPO / "tests" / "runbooks" / "stack-outputs").glob("*.json"))
REQUIRED = {"failback.yaml": {"recovered": "az://vault/restores/20261126T000000Z-abcdef12/"}}


def test_the_three_runbooks_the_docs_promise_are_there() -> None:
    assert {p.name for p in SHIPPED} >= {"failover-aws-to-azure.yaml", "failback.yaml", "drill.yaml"}


@pytest.mark.parametrize("outputs", OUTPUTS, ids=lambda p: p.stem)
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_shipped_runbook_loads_and_plans(path: Path, outputs: Path) -> None:
    loaded = load_runbook(
        path, {k: str(v) for k, v in REQUIRED.get(path.name, {}).items()}, load_stack_outputs(outputs)
    )
    plan = make_plan(loaded)
    assert len(plan.tiers) >= 2
    objectives = loaded.runbook.spec.objectives
    assert objectives.rto is not None  # a DR runbook without an RTO cannot be judged
    assert objectives.rpo is not None


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_production_dns_step_declares_where_a_drill_points(path: Path) -> None:
    loaded = load_runbook(path, dict(REQUIRED.get(path.name, {})), load_stack_outputs(OUTPUTS[0]))
    for step in loaded.runbook.spec.steps:
        if step.action in ("dns.failover", "dns.failback") and step.runs_in("drill"):
            assert step.with_.model_dump().get("drill_endpoint"), f"{path.name}: {step.id} has no drill_endpoint"


MAINTENANCE = sorted((REPO / "runbooks" / "maintenance").glob("*.yaml"))


@pytest.mark.parametrize("path", MAINTENANCE, ids=lambda p: p.name)
def test_a_maintenance_runbook_loads_and_plans_against_an_azure_recovery_stack(path: Path) -> None:
    azure = next(p for p in OUTPUTS if p.stem == "aws-to-azure")
    plan = make_plan(load_runbook(path, {}, load_stack_outputs(azure)))
    assert plan.tiers


def test_parking_the_azure_standby_deallocates_the_vms_the_stack_tags_for_it() -> None:
    (park,) = (p for p in MAINTENANCE if p.name == "park-azure-standby.yaml")
    loaded = load_runbook(park, {}, load_stack_outputs(next(p for p in OUTPUTS if p.stem == "aws-to-azure")))
    (step,) = loaded.runbook.spec.steps
    given = step.with_.model_dump()
    # The tag the stack's standby VMs carry (stacks/components/standby_compute.py), and Azure as the cloud.
    assert (step.action, given["cloud"], given["tags"]["drctl:standby-state"]) == (
        "compute.stop",
        "azure",
        "deallocated",
    )
