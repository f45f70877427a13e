"""What the recovery found: the values of database checks and restores, next to the verdicts."""

from __future__ import annotations

from typing import Any

from orchestrator.report.findings import findings
from orchestrator.report.markdown import render
from orchestrator.report.model import ObjectiveCheck, RunReport, StepReport


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
