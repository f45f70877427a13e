"""The built-in actions run through the executor: backup copy/verify/restore on local directories, and the
http, wait and notify actions against a local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.events import RunEvent
from orchestrator.engine.executor import Executor, RunOptions, RunOutcome
from orchestrator.engine.journal import RunJournal, RunStatus
from orchestrator.runbook.loader import load_runbook


def run(
    tmp_path: Path, steps: list[dict[str, Any]], env: dict[str, str] | None = None
) -> tuple[RunOutcome, RunJournal, list[RunEvent]]:
    doc = {"apiVersion": "drctl/v1", "kind": "Runbook", "metadata": {"name": "t"}, "spec": {"steps": steps}}
    path = tmp_path / "rb.yaml"
    path.write_text(json.dumps(doc))
    events: list[RunEvent] = []
    journal = RunJournal(tmp_path / "state" / "runs.sqlite")
    env = {"DRCTL_STATE_DIR": str(tmp_path / "state"), **(env or {})}
    outcome = Executor(journal, env=env, observer=events.append).run(load_runbook(path), path, RunOptions())
    return outcome, journal, events


def test_backup_copy_verify_restore_chain(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "db").mkdir(parents=True)
    (source / "db" / "a.dump").write_bytes(b"alpha" * 1000)
    (source / "b.txt").write_text("bravo")
    vault, target = tmp_path / "vault", tmp_path / "target"
    steps = [
        {"id": "copy", "action": "backup.copy", "with": {"from": str(source), "to": str(vault), "mode": "full"}},
        {"id": "verify", "action": "backup.verify", "needs": ["copy"], "with": {"set": str(vault), "deep": True}},
        {
            "id": "restore",
            "action": "backup.restore",
            "needs": ["verify"],
            "with": {"set": str(vault), "target": str(target), "point": "${steps.copy.outputs.recovery_point}"},
        },
    ]
    outcome, journal, _ = run(tmp_path, steps)
    assert outcome.status == RunStatus.SUCCEEDED, journal.steps(outcome.run_id)
    recorded = journal.steps(outcome.run_id)
    assert recorded["copy"].outputs["objects_transferred"] == 2
    assert recorded["verify"].outputs == {"points_checked": 1, "objects_checked": 2, "ok": True}
    assert recorded["restore"].outputs["recovery_point"] == recorded["copy"].outputs["recovery_point"]
    assert (target / "db" / "a.dump").read_bytes() == b"alpha" * 1000
    assert (target / "b.txt").read_text() == "bravo"


def test_restore_of_a_missing_set_fails_the_step(tmp_path: Path) -> None:
    steps = [{"id": "r", "action": "backup.restore", "with": {"set": str(tmp_path / "none"), "target": str(tmp_path)}}]
    outcome, journal, _ = run(tmp_path, steps)
    assert outcome.status == RunStatus.FAILED
    assert journal.steps(outcome.run_id)["r"].error


class _Handler(BaseHTTPRequestHandler):
    posted: list[bytes] = []  # noqa: RUF012 - shared by the server's handler instances on purpose

    def do_GET(self) -> None:
        status = 200 if self.path == "/ok" else 503
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"service healthy" if status == 200 else b"down")

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Handler.posted.append(self.rfile.read(length))
        self.send_response(500 if self.path == "/broken" else 200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.posted.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_check_wait_and_notify(tmp_path: Path, server: str) -> None:
    steps = [
        {"id": "up", "action": "http.check", "with": {"url": f"{server}/ok", "expect_body": "healthy"}},
        {"id": "down", "action": "http.check", "on_error": "continue", "with": {"url": f"{server}/down"}},
        {"id": "pause", "action": "wait", "with": {"duration": "10ms"}},
        {"id": "ready", "action": "wait", "with": {"until": {"http": f"{server}/ok"}, "timeout": "5s"}},
        {"id": "tell", "action": "notify", "with": {"message": "failover done", "webhook": f"{server}/hook"}},
    ]
    outcome, journal, events = run(tmp_path, steps)
    recorded = journal.steps(outcome.run_id)
    assert outcome.status == RunStatus.PARTIALLY_FAILED
    assert recorded["up"].outputs["status"] == 200
    assert recorded["down"].error == f"GET {server}/down: answered 503, expected 200"
    assert recorded["pause"].outputs == {"waited_s": 0.01}
    assert recorded["ready"].status.value == "succeeded"
    assert json.loads(_Handler.posted[0]) == {"text": "failover done"}
    assert any(e.kind == "log" and e.message == "failover done" for e in events)


def test_notify_webhook_5xx_is_transient_and_retried(tmp_path: Path, server: str) -> None:
    steps = [
        {
            "id": "tell",
            "action": "notify",
            "retry": {"attempts": 2},
            "with": {"message": "m", "webhook": f"{server}/broken"},
        },
    ]
    outcome, journal, _ = run(tmp_path, steps)
    assert outcome.status == RunStatus.FAILED
    assert journal.steps(outcome.run_id)["tell"].attempts == 2
    assert len(_Handler.posted) == 2


def test_shell_step_timeout_kills_the_command(tmp_path: Path) -> None:
    steps = [
        {"id": "step", "action": "shell", "timeout": "300ms", "with": {"command": "sleep 30"}},
        {"id": "own", "action": "shell", "on_error": "continue", "with": {"command": "sleep 30", "timeout": "300ms"}},
    ]
    outcome, journal, _ = run(tmp_path, steps)
    recorded = journal.steps(outcome.run_id)
    assert recorded["step"].error == "timed out after 300ms"
    assert recorded["own"].error == "command still running after 0.3s; stopped"
