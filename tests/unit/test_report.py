"""Run reports built from real executor runs of tiny runbooks with fake actions, the journal's wall clock
faked so RTO and RPO have known values; each format checked: JSON round-trips, JUnit parses, Markdown tables."""

from __future__ import annotations

import argparse
import json
import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.actions.base import ActionContext, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.actions.registry import REGISTRY
from orchestrator.commands import report as report_command
from orchestrator.engine import journal as journal_module
from orchestrator.engine.executor import RunOptions
from orchestrator.engine.journal import RunStatus
from orchestrator.engine.redact import looks_secret
from orchestrator.errors import ExitCode, NotFound, Permanent, Transient
from orchestrator.report import json_report, junit, markdown
from orchestrator.report.model import RunReport, build_report
from tests.unit.test_executor import RECORDER, Behaviour, FakeParams, Harness, fake_action, fake_run, harness, step

__all__ = ["fake_action", "harness"]  # pytest fixtures, used by name

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class WallClock:
    """The journal's timestamps: time moves only when a fake step says so."""

    def __init__(self) -> None:
        self.now = T0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def __call__(self) -> str:
        return self.now.isoformat()


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    clock = WallClock()
    monkeypatch.setattr(journal_module, "_now", clock)
    return clock


FAKE_RESTORE = ActionSpec(
    name="backup.restore",
    params=FakeParams,
    description="a test double of backup.restore",
    touches=lambda p: (Touch("writes", p.tag),),
    idempotent=True,
    outputs=frozenset({"recovery_point", "point_started", "point_created"}),
    run=fake_run,
)


@pytest.fixture(autouse=True)
def fake_restore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY._specs, "backup.restore", FAKE_RESTORE)


def takes(wall: WallClock, seconds: float, outputs: dict[str, Any] | None = None) -> Behaviour:
    def behaviour(p: FakeParams, ctx: ActionContext) -> StepResult:
        wall.advance(seconds)
        return StepResult(StepStatus.SUCCEEDED, outputs or {"value": ctx.step_id})

    return behaviour


def restored(wall: WallClock, seconds: float, point_age: timedelta | None, created_age: timedelta) -> Behaviour:
    outputs: dict[str, Any] = {"recovery_point": "rp-1", "point_created": (T0 - created_age).isoformat()}
    if point_age is not None:
        outputs["point_started"] = (T0 - point_age).isoformat()
    return takes(wall, seconds, outputs)


def recovery_run(harness: Harness, wall: WallClock, rto: str, rpo: str, point_age: timedelta | None) -> RunReport:
    """restore (tier 1, 120s) -> app (tier 2, gated, 180s) and check (tier 2, one transient failure, 60s):
    with one step at a time the last tier-2 step ends 360s after the run started."""
    RECORDER.behaviours["restore"] = restored(wall, 120, point_age, timedelta(minutes=20))
    RECORDER.behaviours["app"] = takes(wall, 180)
    failures = [Transient("503 from the health endpoint")]

    def check(p: FakeParams, ctx: ActionContext) -> StepResult:
        wall.advance(30)
        if failures:
            raise failures.pop()
        return takes(wall, 0)(p, ctx)

    RECORDER.behaviours["check"] = check
    steps = [
        {"id": "restore", "action": "backup.restore", "with": {"tag": "db"}},
        step("app", tier=2, needs=["restore"], approval="required"),
        step("check", tier=2, needs=["restore"], retry={"attempts": 2, "backoff": "1s"}),
    ]
    outcome = harness.run(steps, RunOptions(mode="drill", max_parallel=1), objectives={"rto": rto, "rpo": rpo})
    assert outcome.status == RunStatus.SUCCEEDED
    assert harness.journal is not None
    return build_report(harness.journal, outcome.run_id)


def test_report_model_measures_rto_and_rpo_from_the_journal(harness: Harness, wall: WallClock) -> None:
    report = recovery_run(harness, wall, "10m", "1h", timedelta(minutes=30))

    assert (report.mode, report.status, report.runbook_name) == ("drill", "succeeded", "t")
    assert [s.step_id for s in report.steps] == ["restore", "app", "check"]
    by_id = {s.step_id: s for s in report.steps}
    assert (by_id["restore"].action, by_id["restore"].tier, by_id["app"].tier) == ("backup.restore", 1, 2)
    assert by_id["restore"].duration_seconds == 120
    assert by_id["app"].approval == "auto-approved (drill)"
    attempts = by_id["check"].attempts
    assert [(a.number, a.status) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert attempts[0].error == "503 from the health endpoint"
    assert by_id["check"].duration_seconds == 60  # from its first attempt: not the time queued behind app
    assert by_id["check"].started == (T0 + timedelta(seconds=120)).isoformat()
    assert report.rto.measured_seconds == 360
    assert report.rto.detail.startswith("360s <= objective 600s")
    assert (report.rto.objective_seconds, report.rto.verdict) == (600, "pass")
    assert report.rpo.measured_seconds == 1800
    assert (report.rpo.objective_seconds, report.rpo.verdict) == (3600, "pass")
    assert any(e.kind == "retry" and e.step_id == "check" for e in report.events)


def test_missed_objectives_fail(harness: Harness, wall: WallClock) -> None:
    report = recovery_run(harness, wall, "5m", "15m", timedelta(minutes=30))
    assert (report.rto.measured_seconds, report.rto.verdict) == (360, "fail")
    assert (report.rpo.measured_seconds, report.rpo.verdict) == (1800, "fail")
    assert report.rpo.detail.startswith("1800s > objective 900s")


def test_rpo_from_point_created_only_can_fail_but_never_pass(harness: Harness, wall: WallClock) -> None:
    report = recovery_run(harness, wall, "10m", "1h", None)
    assert (report.rpo.verdict, report.rpo.measured_seconds) == ("unknown", None)
    assert "point_started" in report.rpo.detail

    later = Harness(harness.directory / "again")
    later.directory.mkdir()
    wall.now = T0
    missed = recovery_run(later, wall, "10m", "10m", None)  # created 20m before the start: over 10m for sure
    assert (missed.rpo.verdict, missed.rpo.measured_seconds) == ("fail", 1200)


def test_json_round_trips_and_carries_the_verdicts(harness: Harness, wall: WallClock) -> None:
    report = recovery_run(harness, wall, "5m", "1h", timedelta(minutes=30))
    text = json_report.render(report)
    assert json_report.parse(text) == report
    doc = json.loads(text)
    assert (doc["rto"]["verdict"], doc["rto"]["measured_seconds"]) == ("fail", 360)
    assert (doc["rpo"]["verdict"], doc["rpo"]["measured_seconds"]) == ("pass", 1800)
    assert doc["steps"][2]["attempts"][0]["error"] == "503 from the health endpoint"
    # New keys, next to the old ones: how RPO was measured, from when, and the RTO by phase.
    assert (doc["rpo_method"], doc["disaster_at"], doc["disaster_at_source"]) == (
        "recovery point age",
        T0.isoformat(),
        "run start",
    )
    assert doc["rto_phases"]["window"] == "rto"
    assert [(p["phase"], p["seconds"], p["steps"]) for p in doc["rto_phases"]["phases"]] == [
        ("restore", 120, ["restore"]),
        ("other", 240, ["app", "check"]),
    ]


def failed_run(harness: Harness, wall: WallClock) -> RunReport:
    """ok (tier 1) -> broken (tier 2, fails with XML-hostile text, on_error continue) -> after (skipped)."""
    RECORDER.behaviours["ok"] = takes(wall, 10)

    def broken(p: FakeParams, ctx: ActionContext) -> StepResult:
        wall.advance(5)
        raise Permanent('bad <tag> & "quote" ]]> \x1b\nsecond line')

    RECORDER.behaviours["broken"] = broken
    steps = [
        step("ok"),
        step("broken", tier=2, needs=["ok"], on_error="continue"),
        step("after", tier=2, needs=["broken"]),
    ]
    outcome = harness.run(steps, RunOptions(max_parallel=1), objectives={"rto": "1h"})
    assert outcome.status == RunStatus.PARTIALLY_FAILED
    assert harness.journal is not None
    return build_report(harness.journal, outcome.run_id)


def test_failed_tier_means_rto_failed_and_rpo_unknown(harness: Harness, wall: WallClock) -> None:
    report = failed_run(harness, wall)
    assert report.rto.verdict == "fail"
    assert "tier 2" in report.rto.detail
    assert report.rpo.verdict == "unknown"
    assert "no backup.restore step" in report.rpo.detail


def test_junit_has_a_testcase_per_step_and_objective_with_failures_marked(harness: Harness, wall: WallClock) -> None:
    report = failed_run(harness, wall)
    root = ET.fromstring(junit.render(report).encode())
    suites = root.findall("testsuite")
    assert len(suites) == 1
    cases = {c.get("name"): c for c in suites[0].findall("testcase")}
    assert list(cases) == ["ok", "broken", "after", "objective.rto", "objective.rpo"]
    assert cases["ok"].find("failure") is None
    assert cases["ok"].get("time") == "10.000"
    failure = cases["broken"].find("failure")
    assert failure is not None
    assert failure.get("message") == 'bad <tag> & "quote" ]]> \ufffd'
    assert "second line" in (failure.text or "")
    assert cases["after"].find("skipped") is not None
    rto_failure = cases["objective.rto"].find("failure")
    assert rto_failure is not None
    assert "no step of tier 2 succeeded" in (rto_failure.get("message") or "")
    assert cases["objective.rpo"].find("skipped") is not None
    assert (suites[0].get("tests"), suites[0].get("failures"), suites[0].get("skipped")) == ("5", "2", "2")
    suite_props = suites[0].find("properties")
    assert suite_props is not None
    props = {p.get("name"): p.get("value") for p in suite_props}
    # No RTO: the phases cover the run (ok 10s, broken 5s, both "other"), with no share of an RTO.
    assert (props["rto_phases_window"], props["rto_phase.other.seconds"]) == ("run", "15.000")
    assert "rto_phase.other.share" not in props
    assert (props["rpo_method"], props["disaster_at_source"]) == ("recovery point age", "run start")


def test_junit_of_a_met_objective_passes(harness: Harness, wall: WallClock) -> None:
    root = ET.fromstring(junit.render(recovery_run(harness, wall, "10m", "1h", timedelta(minutes=30))))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(cases) == 5
    assert all(c.find("failure") is None and c.find("skipped") is None for c in cases.values())
    assert root.get("failures") == "0"


def test_markdown_has_the_summary_objectives_and_steps_tables(harness: Harness, wall: WallClock) -> None:
    text = markdown.render(recovery_run(harness, wall, "5m", "1h", timedelta(minutes=30)))
    assert "| Mode | drill |" in text
    assert "| RTO | 5m00s | 6m00s | FAIL |" in text
    assert "| RPO | 1h00m00s | 30m00s | PASS |" in text
    rows = [line for line in text.splitlines() if line.startswith("| 2 |")]
    assert [r.split(" | ")[1] for r in rows] == ["app", "check"]
    assert "#1 failed: 503 from the health endpoint; #2 succeeded" in text
    assert "auto-approved (drill)" in text
    assert "RPO method: recovery point age; disaster instant: 2026-03-01T12:00:00+00:00 (run start)." in text
    phases = text.split("## RTO by phase\n", 1)[1].split("\n## ", 1)[0]
    assert "| restore | 2m00s | 33% | restore |" in phases
    assert "| other | 4m00s | 67% | app, check |" in phases


def test_markdown_escapes_table_breaking_text(harness: Harness, wall: WallClock) -> None:
    text = markdown.render(failed_run(harness, wall))
    row = next(line for line in text.splitlines() if "| broken |" in line)
    assert row.count(" | ") == 9  # ten cells: nothing in the error opened a new one
    assert 'bad &lt;tag&gt; &amp; "quote" ]]&gt;' in row  # shown as text, never as HTML
    assert "\x1b" not in text
    skipped = next(line for line in text.splitlines() if "| after |" in line)
    assert "needs 'broken', which did not succeed" in skipped
    assert "second line" not in text  # tables carry an error's first line only


def test_a_changed_runbook_leaves_tiers_and_objectives_unknown(harness: Harness, wall: WallClock) -> None:
    RECORDER.behaviours["only"] = takes(wall, 1)
    outcome = harness.run([step("only")], objectives={"rto": "1m"})
    (harness.directory / "rb.yaml").write_text("changed")
    assert harness.journal is not None
    report = build_report(harness.journal, outcome.run_id)
    assert report.steps[0].tier is None
    assert report.steps[0].status == "succeeded"
    assert (report.rto.verdict, report.rpo.verdict) == ("unknown", "unknown")
    assert "changed since the run started" in report.notes[0]
    assert "| ? | only | ? | succeeded |" in markdown.render(report)


def test_a_runbook_that_no_longer_validates_gives_its_facts_unchecked(
    harness: Harness, wall: WallClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    RECORDER.behaviours["first"] = takes(wall, 5)
    RECORDER.behaviours["last"] = takes(wall, 7)
    steps = [step("first"), step("last", tier=3, needs=["first"])]
    outcome = harness.run(steps, objectives={"rto": "10s", "rpo": "1m"})
    monkeypatch.delitem(REGISTRY._specs, "fake")  # e.g. a drctl without the action reads the journal
    assert harness.journal is not None
    report = build_report(harness.journal, outcome.run_id)
    assert [(s.step_id, s.action, s.tier) for s in report.steps] == [("first", "fake", 1), ("last", "fake", 3)]
    assert (report.rto.measured_seconds, report.rto.verdict) == (12, "fail")
    assert (report.rpo.objective_seconds, report.rpo.verdict) == (60, "unknown")
    assert "read unchecked" in report.notes[0]


# -- the command ------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    report_command.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_command_writes_each_format_to_stdout_or_a_file(
    harness: Harness, wall: WallClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = recovery_run(harness, wall, "10m", "1h", timedelta(minutes=30))
    monkeypatch.setenv("DRCTL_STATE_DIR", str(harness.directory))
    # The command masks the values of secret-looking variables of its environment (the lab's dummy "test"
    # credentials among them); this test is about the formats, so none may leak in from the caller.
    for name in list(os.environ):
        if looks_secret(name):
            monkeypatch.delenv(name)
    args = parse_args(["report", report.run_id, "--format", "json"])
    assert args.handler(args) == ExitCode.OK
    assert json_report.parse(capsys.readouterr().out) == report

    out = harness.directory / "junit.xml"
    args = parse_args(["report", report.run_id, "--format", "junit", "--out", str(out)])
    assert args.handler(args) == ExitCode.OK
    assert capsys.readouterr().out == ""
    assert ET.parse(out).getroot().get("tests") == "5"


def test_command_unknown_run_is_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path))
    args = parse_args(["report", "no-such-run", "--format", "markdown"])
    with pytest.raises(NotFound) as caught:
        args.handler(args)
    assert caught.value.exit_code == ExitCode.NOT_FOUND
    assert int(caught.value.exit_code) == 5
    assert "no-such-run" in str(caught.value)
    assert "\n" not in str(caught.value)
