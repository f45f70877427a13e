"""Secrets a run used (an API key, a SAS token, a password from the environment) appear in no report format,
even when the run's shell steps printed them and failed with them in their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.commands.report import RENDERERS, render
from orchestrator.engine.executor import Executor, RunOptions
from orchestrator.engine.journal import RunJournal, RunStatus
from orchestrator.report.model import build_report, redact_report
from orchestrator.runbook.loader import load_runbook

SECRETS = {
    "PAYMENTS_API_KEY": "sk_live_51HxAbCdEfGhIjKlMnOpQrStUv",
    "AZURE_STORAGE_SAS": "sv=2024-01-01&ss=b&sig=Zm9vYmFyYmF6cXV4c2VjcmV0%3D",
    "DB_PASSWORD": "correct-horse-battery-staple",
}


def test_secrets_appear_in_no_report_format(tmp_path: Path) -> None:
    steps = [
        {
            "id": "login",
            "action": "shell",
            "with": {
                "command": 'echo "key=$API sas=$AZURE_STORAGE_SAS"; echo "$PW" >&2',
                "env": {"API": "${env.PAYMENTS_API_KEY}", "PW": "${env.DB_PASSWORD}"},
            },
        },
        {
            "id": "denied",
            "action": "shell",
            "tier": 2,
            "needs": ["login"],
            "on_error": "continue",
            "with": {
                "command": 'echo "denied for $PW with $API" >&2; exit 3',
                "env": {"PW": "${env.DB_PASSWORD}", "API": "${env.PAYMENTS_API_KEY}"},
            },
        },
    ]
    doc = {
        "apiVersion": "drctl/v1",
        "kind": "Runbook",
        "metadata": {"name": "secretive"},
        "spec": {"objectives": {"rto": "1h"}, "steps": steps},
    }
    path = tmp_path / "rb.yaml"
    path.write_text(json.dumps(doc))
    env = {"PATH": "/usr/bin:/bin", **SECRETS}
    journal = RunJournal(tmp_path / "runs.sqlite")
    try:
        outcome = Executor(journal, env=env).run(load_runbook(path), path, RunOptions())
        report = build_report(journal, outcome.run_id)
    finally:
        journal.close()

    # The run really handled the secrets: the command printed them and the failure echoed them (masked).
    assert outcome.status == RunStatus.PARTIALLY_FAILED
    login = next(s for s in report.steps if s.step_id == "login")
    assert "key=*** sas=***" in str(login.outputs["stdout"])
    denied = next(s for s in report.steps if s.step_id == "denied")
    assert denied.status == "failed"
    assert "***" in (denied.error or "") + "".join(a.error or "" for a in denied.attempts)

    for fmt in RENDERERS:
        for text in (RENDERERS[fmt](report), render(report, fmt, env)):
            for name, value in SECRETS.items():
                assert value not in text, f"{name} leaked into the {fmt} report"
            assert "sk_live" not in text


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_the_command_masks_credential_variables_without_breaking_the_format(fmt: str, tmp_path: Path) -> None:
    """A secret the journal did not know about (set after the run) is still masked, field by field, so the
    JSON stays JSON even when the secret equals a word of the format."""
    path = tmp_path / "rb.yaml"
    doc = {
        "apiVersion": "drctl/v1",
        "kind": "Runbook",
        "metadata": {"name": "t"},
        "spec": {"steps": [{"id": "say", "action": "shell", "with": {"command": "echo hunter2-late-secret"}}]},
    }
    path.write_text(json.dumps(doc))
    journal = RunJournal(tmp_path / "runs.sqlite")
    try:
        outcome = Executor(journal, env={"PATH": "/usr/bin:/bin"}).run(load_runbook(path), path, RunOptions())
        report = build_report(journal, outcome.run_id)
    finally:
        journal.close()
    env = {"LATE_TOKEN": "hunter2-late-secret", "STATUS_KEY": "status", "VERDICT_KEY": "pass"}
    text = render(report, fmt, env)
    assert "hunter2-late-secret" not in text
    assert "hunter2-late-secret" not in str(redact_report(report, frozenset({"hunter2-late-secret"})))
    if fmt == "json":
        assert json.loads(text)["steps"][0]["outputs"]["stdout"].strip() == "***"
