"""``drctl drill`` refuses bad input with one line and its own exit code, before touching any cloud."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.engine.journal import RunJournal, RunStatus
from orchestrator.errors import ExitCode
from tests.support.cli import assert_one_line_error, drctl

REPO = Path(__file__).resolve().parents[2]
MINIMAL = str(REPO / "tests" / "runbooks" / "valid" / "minimal.yaml")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No lab: an endpoint nothing listens on, so a command that reached for a cloud would fail differently."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DRCTL_STATE_DIR": str(tmp_path / "state"),
        "AWS_REGION": "us-west-2",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "not-a-real-secret-0123456789",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }


def test_a_drill_needs_a_runbook(env: dict[str, str]) -> None:
    assert_one_line_error(drctl("drill", env=env), ExitCode.INVALID_INPUT, "needs a RUNBOOK")


def test_run_sends_a_drill_to_drctl_drill_before_starting_anything(env: dict[str, str]) -> None:
    # Only `drctl drill` cleans up after a drill; `drctl run --mode drill` would leave its copies behind.
    result = drctl("run", MINIMAL, "--mode", "drill", env=env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "drctl drill RUNBOOK")
    assert not (Path(env["DRCTL_STATE_DIR"]) / "runs.sqlite").exists()


def test_cleanup_needs_a_run_or_orphans(env: dict[str, str]) -> None:
    assert_one_line_error(drctl("drill", "--cleanup", env=env), ExitCode.INVALID_INPUT, "--orphans")


def test_cleanup_of_an_unknown_run_is_not_found(env: dict[str, str]) -> None:
    result = drctl("drill", "--cleanup", "20260101T000000Z-deadbeef", env=env)
    assert_one_line_error(result, ExitCode.NOT_FOUND, "no run '20260101T000000Z-deadbeef'", "--orphans")


def test_cleanup_never_touches_a_failover(env: dict[str, str]) -> None:
    ran = drctl("run", MINIMAL, "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split('"run_id": "')[1].split('"')[0]
    result = drctl("drill", "--cleanup", run_id, env=env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "not a drill", "resources are kept")


def test_cleanup_of_a_killed_drill_marks_it_interrupted(env: dict[str, str]) -> None:
    """A drill killed with -9 stays ``running`` in the journal; its ``--cleanup`` (no live process holds it)
    says it ended, so ``drctl status`` does not show it running for ever."""
    run_id = "20260101T000000Z-0badf00d"
    journal = RunJournal(Path(env["DRCTL_STATE_DIR"]) / "runs.sqlite")
    try:
        journal.start_run(run_id, "drill.yaml", "0" * 64, "killed", {}, "drill")
    finally:
        journal.close()
    drctl("drill", "--cleanup", run_id, env=env)  # the tag sweep cannot reach EC2 here; the ledger is empty
    journal = RunJournal(Path(env["DRCTL_STATE_DIR"]) / "runs.sqlite")
    try:
        record = journal.run(run_id)
        assert record is not None
        assert record.status == RunStatus.INTERRUPTED
    finally:
        journal.close()
    status = drctl("status", run_id, env=env)
    assert "interrupted" in status.stdout, status.stdout + status.stderr


SLOW = """\
apiVersion: drctl/v1
kind: Runbook
metadata: {name: slow}
spec:
  objectives: {rto: %s}
  steps:
    - {id: pause, action: wait, with: {duration: 300ms}}
"""


@pytest.mark.parametrize(("rto", "strict", "code"), [("1ms", True, 9), ("1ms", False, 0), ("1h", True, 0)])
def test_a_missed_objective_fails_the_drill_only_when_asked(
    env: dict[str, str], tmp_path: Path, rto: str, strict: bool, code: int
) -> None:
    runbook = tmp_path / "slow.yaml"
    runbook.write_text(SLOW % rto)
    flags = ["--fail-on-missed-objectives"] if strict else []
    result = drctl("drill", str(runbook), *flags, env=env)
    assert result.returncode == code, result.stdout + result.stderr
    assert ("missed its objectives (RTO" in result.stderr) == (code == ExitCode.OBJECTIVE_MISSED)
    assert "Traceback" not in result.stderr


def test_a_bad_min_age_is_refused(env: dict[str, str]) -> None:
    result = drctl("drill", "--cleanup", "--orphans", "--min-age", "soon", env=env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "--min-age", "not a duration")


def test_an_unreachable_endpoint_is_named(env: dict[str, str]) -> None:
    result = drctl("drill", "--cleanup", "--orphans", env=env)
    assert_one_line_error(result, ExitCode.UNREACHABLE, "cannot reach EC2", "AWS_ENDPOINT_URL")
    assert env["AWS_SECRET_ACCESS_KEY"] not in result.stdout + result.stderr


def test_a_malformed_runbook_is_refused_before_anything_runs(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(MINIMAL).read_text().replace("steps:", "stepz:"))
    result = drctl("drill", str(bad), env=env)
    assert result.returncode == ExitCode.INVALID_INPUT
    assert "Traceback" not in result.stderr
    assert "stepz" in result.stderr
    journal = tmp_path / "state" / "runs.sqlite"
    if journal.exists():  # the journal may be opened, but no run may start from a runbook that did not load
        opened = RunJournal(journal)
        try:
            assert opened.runs() == []
        finally:
            opened.close()
