"""``drctl plan``: waves in order with what each touches, tiers, approvals and the critical path."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.commands.runbook import render_text
from orchestrator.runbook.loader import load_runbook, parse_runbook
from orchestrator.runbook.plan import make_plan
from orchestrator.stack_outputs import StackOutputs, parse_stack_outputs

RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"
FAILOVER = RUNBOOKS / "valid" / "failover-aws-to-azure.yaml"
DRILL = RUNBOOKS / "valid" / "drill-lab.yaml"


def outputs(name: str) -> StackOutputs:
    return parse_stack_outputs(json.loads((RUNBOOKS / "stack-outputs" / f"{name}.json").read_text()), name)


def test_text_plan_of_the_example() -> None:
    lines = render_text(make_plan(load_runbook(FAILOVER, source="failover.yaml", stack=outputs("aws-to-azure"))))
    assert lines == [
        "plan of runbook failover-aws-to-azure (failover.yaml): 6 steps in 5 waves, 3 tiers",
        "  Copy database backups from S3 to the Azure vault, verify them, restore them in the recovery region.",
        "  objectives: RTO 6h, RPO 1h",
        "  parameters: mode=incremental, copies=4, deep=true",
        "  provider primary: aws region=us-east-1",
        "  provider recovery: aws region=us-west-2",
        "  provider vault: azure account=drctlvault",
        "",
        "tier 1",
        "  wave 1",
        "    copy-db-backups: backup.copy (timeout 30m; 5 attempts)",
        "      reads s3://drctl-backups/db/",
        "      writes az://backups/db/ (a new incremental recovery point)",
        "  wave 2",
        "    verify: backup.verify (needs copy-db-backups; timeout 20m; APPROVAL REQUIRED)",
        "      reads az://backups/db/ (every recovery point, every byte)",
        "      undo: notify (sends a message to the run log)",
        "    announce: notify (needs copy-db-backups; no timeout; continues on error)",
        "      sends a message to ${env.DR_WEBHOOK}",
        "",
        "tier 2",
        "  wave 3",
        "    restore-db: backup.restore (needs verify; timeout 1h)",
        "      reads az://backups/db/ (${steps.copy-db-backups.outputs.recovery_point})",
        "      writes s3://drctl-backups-replica/restored/db/",
        "  wave 4",
        "    wait-for-db: wait (needs restore-db; timeout 11m)",
        "      waits until db.recovery.internal:5432 accepts connections (at most 10m)",
        "",
        "tier 3",
        "  wave 5",
        "    health: http.check (timeout 6m; drill only)",
        "      calls GET https://app.drill.example.internal/health (expects 200)",
        "",
        "approvals: verify (a person approves each in a failover; drills pass them)",
        "critical path: copy-db-backups -> verify -> restore-db -> wait-for-db -> health: 4h9m30s at worst",
        "  within the RTO of 6h",
        "runbook compensation: notify (sends a message to the run log)",
        "nothing was changed",
    ]


def test_without_stack_outputs_targets_stay_as_written() -> None:
    plan = make_plan(load_runbook(FAILOVER))
    assert plan.waves[0].steps[0].touches[0].target == "s3://${stack.backup_bucket}/db/"
    assert plan.providers[2] == ("vault", "azure account=${stack.vault_account}")


def test_environment_values_never_appear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_WEBHOOK", "https://hooks.example.com/SECRET-TOKEN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SECRET-KEY")
    for path, stack in ((FAILOVER, "aws-to-azure"), (DRILL, "lab")):
        plan = make_plan(load_runbook(path, stack=outputs(stack)))
        shown = "\n".join(render_text(plan)) + json.dumps(plan.as_dict())
        assert "SECRET" not in shown


def test_json_plan() -> None:
    doc = make_plan(load_runbook(DRILL, {"parallel": "16"}, stack=outputs("lab"))).as_dict()
    assert doc["parameters"] == {"point": "latest", "fraction": 0.5, "deep": False, "parallel": 16}
    assert doc["objectives"] == {"rto_s": 3600.0, "rpo_s": None}
    assert doc["tiers"] == [1, 2, 3]
    restore = doc["waves"][1]["steps"][0]  # type: ignore[index]
    assert restore == {
        "id": "restore",
        "action": "backup.restore",
        "description": "restore a recovery point of a backup set into a target, every object verified",
        "needs": ["verify-backups"],
        "when": "always",
        "approval": "none",
        "on_error": "fail",
        "timeout_s": 2700.0,
        "attempts": 2,
        "idempotent": True,
        "worst_case_s": 5400.0,
        "touches": [
            {
                "access": "reads",
                "target": "s3://drctl-backups/db/ (the newest point at or before 2026-11-26T09:30:00+00:00)",
            },
            {"access": "writes", "target": "s3://drctl-backups-replica/drill/latest/"},
        ],
        "compensate": {
            "action": "shell",
            "touches": [
                {
                    "access": "runs",
                    "target": "aws s3 rm --recursive s3://$${BUCKET}/drill/ # restored "
                    "${steps.restore.outputs.recovery_point}",
                }
            ],
        },
    }
    assert doc["critical_path"] == {
        "steps": ["verify-backups", "restore", "start-db", "settle", "smoke"],
        "worst_case_s": 600.0 + 5400.0 + 360.0 + 300.0 + 300.0,
        "estimated_steps": ["settle", "smoke"],
        "default_estimate_s": 300.0,
        "within_rto": False,
    }
    assert doc["approvals"] == ["smoke"]
    assert json.loads(json.dumps(doc)) == doc


def test_critical_path_against_the_rto() -> None:
    text = (
        "apiVersion: drctl/v1\nkind: Runbook\nmetadata: {name: t}\nspec:\n"
        "  objectives: {rto: 15m}\n"
        "  steps:\n"
        "    - {id: a, action: notify, with: {message: a}, timeout: 10m}\n"
        "    - {id: b, action: notify, with: {message: b}, needs: [a]}\n"
    )
    plan = make_plan(parse_runbook(text, "t.yaml"))
    assert plan.within_rto is True
    assert render_text(plan)[-3:] == [
        "critical path: a -> b: 15m at worst (1 step without a timeout counted at 5m)",
        "  within the RTO of 15m",
        "nothing was changed",
    ]
    slower = make_plan(parse_runbook(text, "t.yaml"), default_estimate=timedelta(minutes=6))
    assert slower.within_rto is False
    assert "  EXCEEDS the RTO of 15m" in render_text(slower)
