"""What the recovery found: the values of database checks and restores, next to the verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.report.findings import findings
from orchestrator.report.markdown import render
from orchestrator.report.model import ObjectiveCheck, RunReport, StepReport, facts_of
from orchestrator.report.verification import verification
from orchestrator.runbook.loader import load_runbook
from orchestrator.stack_outputs import load_stack_outputs

REPO = Path(__file__).resolve().parents[2]


def step(step_id: str, action: str, outputs: dict[str, Any], status: str = "succeeded") -> StepReport:
    return StepReport(step_id, action, 3, status, (), None, None, 1.0, outputs, None, None)


def test_checks_and_restores_are_reported_with_their_values() -> None:
    steps = [
        step("copy", "backup.copy", {"recovery_point": "p1"}),
        step(
            "restore-db",
            "db.restore",
            {"object": "db/shop.dump", "bytes": 12677, "sha256": "49b2c23546acca354574", "recovery_point": "p1"},
        ),
        step("check-db", "db.check", {"values": '{"orders":"809","newest_order":"2026-12-03T16:00:18+00:00"}'}),
    ]
    found = [(f.step_id, f.text) for f in findings(steps)]
    assert found == [
        ("restore-db", "db/shop.dump (12677 bytes, sha256 49b2c23546acca35...) from point p1"),
        ("check-db", "orders = 809, newest_order = 2026-12-03T16:00:18+00:00"),
    ]


def test_failed_or_unreadable_checks_report_nothing() -> None:
    steps = [
        step("check-db", "db.check", {"values": '{"orders":"0"}'}, status="failed"),
        step("check-2", "db.check", {"values": "not json"}),
        step("check-3", "db.check", {"values": "{}"}),
    ]
    assert findings(steps) == []


def run_report(steps: list[StepReport]) -> RunReport:
    return RunReport(
        run_id="r1",
        runbook_name="drill",
        runbook_path="runbooks/drill.yaml",
        mode="drill",
        status="succeeded",
        started="2026-12-03T16:00:00+00:00",
        finished="2026-12-03T16:00:20+00:00",
        params={},
        steps=tuple(steps),
        events=(),
        rto=ObjectiveCheck("rto", 900, 20, "pass", "20s"),
        rpo=ObjectiveCheck("rpo", 3600, 7, "pass", "7s"),
        notes=(),
        cleanup=(),
    )


def test_the_markdown_report_has_a_findings_section_only_when_something_was_found() -> None:
    assert "## What the recovery found" not in render(run_report([]))
    text = render(run_report([step("check-db", "db.check", {"values": '{"orders":"809"}'})]))
    assert "## What the recovery found" in text
    assert "| check-db | db.check | orders = 809 |" in text


def test_each_step_says_how_its_path_was_verified() -> None:
    assert verification("db.restore", None) == "lab"
    assert verification("compute.start", None) == "lab"
    assert verification("compute.start", "azure") == "unit"
    assert verification("dns.failover", "route53") == "lab"
    assert verification("dns.failover", "traffic_manager") == "unit"
    assert verification("some.plugin", None) == "unverified"
    assert verification(None, None) == "unverified"
    text = render(run_report([step("check-db", "db.check", {"values": "{}"})]))
    assert "| Verified |" in text


def test_a_dns_step_is_labelled_by_the_provider_its_stack_uses() -> None:
    runbooks = REPO / "runbooks"
    outputs = REPO / "tests" / "runbooks" / "stack-outputs"
    azure = facts_of(load_runbook(runbooks / "drill.yaml", {}, load_stack_outputs(outputs / "aws-to-azure.json")))
    lab = facts_of(load_runbook(runbooks / "drill.yaml", {}, load_stack_outputs(outputs / "lab.json")))
    assert verification("dns.failover", azure.places.get("switch-dns")) == "unit"
    assert verification("dns.failover", lab.places.get("switch-dns")) == "lab"
