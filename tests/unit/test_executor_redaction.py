"""Secrets in the environment never reach the journal, the events or the console, even when a command
prints them or fails with them in its message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.engine.events import PrintObserver, RunEvent
from orchestrator.engine.executor import Executor, RunOptions
from orchestrator.engine.journal import RunJournal, RunStatus
from orchestrator.runbook.loader import load_runbook

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AZURE_STORAGE_SAS": "sv=2024-01-01&sig=Zm9vYmFyYmF6cXV4c2VjcmV0",
    "DB_PASSWORD": "correct-horse-battery-staple",
    "PLAIN_NAMED": "referenced-but-innocent-name-1234",
}


def test_planted_secrets_appear_nowhere(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    steps = [
        {
            "id": "echo",
            "action": "shell",
            "with": {
                "command": 'echo "$PW $AWS_SECRET_ACCESS_KEY $PLAIN"; echo "$AZURE_STORAGE_SAS" >&2',
                "env": {"PW": "${env.DB_PASSWORD}", "PLAIN": "${env.PLAIN_NAMED}"},
            },
        },
        {
            "id": "fail",
            "action": "shell",
            "needs": ["echo"],
            "on_error": "continue",
            "with": {"command": 'echo "denied for $PW" >&2; exit 3', "env": {"PW": "${env.DB_PASSWORD}"}},
        },
        {"id": "tell", "action": "notify", "with": {"message": "pw is ${env.DB_PASSWORD}"}},
    ]
    doc = {"apiVersion": "drctl/v1", "kind": "Runbook", "metadata": {"name": "t"}, "spec": {"steps": steps}}
    path = tmp_path / "rb.yaml"
    path.write_text(json.dumps(doc))
    events: list[RunEvent] = []
    printer = PrintObserver()

    def observe(event: RunEvent) -> None:
        events.append(event)
        printer(event)

    env = {"PATH": "/usr/bin:/bin", **SECRETS}
    journal = RunJournal(tmp_path / "state" / "runs.sqlite")
    outcome = Executor(journal, env=env, observer=observe).run(load_runbook(path), path, RunOptions())
    recorded = journal.steps(outcome.run_id)
    journal.close()

    # The run did what it should: the command ran with the secrets, and its output was kept, masked.
    assert outcome.status == RunStatus.PARTIALLY_FAILED
    assert recorded["echo"].outputs["stdout"] == "*** *** ***\n"
    assert recorded["fail"].error == "command exited with status 3: denied for ***"
    captured = capfd.readouterr()
    blobs = [p.read_bytes() for p in (tmp_path / "state").iterdir()]
    assert any(b"denied for ***" in b for b in blobs), "the journal was read back where the text is"
    texts = [captured.out, captured.err, *(str(e) for e in events)]
    for name, secret in SECRETS.items():
        for blob in blobs:
            assert secret.encode() not in blob, f"{name} is in the journal"
        for text in texts:
            assert secret not in text, f"{name} was printed or recorded as an event"
