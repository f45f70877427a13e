"""RPO measured from the restored data against the disaster instant (the run's start or ``--disaster-at``), with
the recovery point's age as the fallback; and the RTO split into phases (union of each phase's step intervals,
clipped to the RTO window). Reports come from real executor runs of tiny runbooks whose fake actions carry the
real action names, the journal's wall clock faked; the phase arithmetic is also checked on reports built
directly, where steps can overlap exactly."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator import cli
from orchestrator.actions.base import ActionContext, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.actions.registry import REGISTRY
from orchestrator.commands import drill as drill_command
from orchestrator.commands.common import parse_disaster_at
from orchestrator.engine.executor import RunOptions
from orchestrator.engine.journal import RunJournal, RunStatus, journal_path
from orchestrator.errors import ExitCode, InvalidInput
from orchestrator.report import html, json_report, junit, markdown
from orchestrator.report.model import ObjectiveCheck, RunReport, StepReport, build_report, check_rto, rto_phases
from orchestrator.report.phases import OVERLAP_NOTE, PHASE_OF_ACTION, PHASES, phase_of, union_seconds
from orchestrator.runbook.loader import load_runbook
from tests.unit.test_executor import (
    RECORDER,
    Behaviour,
    FakeParams,
    Harness,
    fake_action,
    fake_run,
    harness,
    step,
    write_runbook,
)
from tests.unit.test_report import T0, WallClock, fake_restore, restored, takes, wall

__all__ = ["fake_action", "fake_restore", "harness", "wall"]  # pytest fixtures, used by name


def spec(name: str, outputs: frozenset[str] = frozenset({"value"})) -> ActionSpec[FakeParams]:
    return ActionSpec(
        name=name,
        params=FakeParams,
        description=f"a test double of {name}",
        touches=lambda p: (Touch("runs", p.tag),),
        idempotent=True,
        outputs=outputs,
        run=fake_run,
    )


@pytest.fixture(autouse=True)
def fake_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real action names, run by the fake: their phases and outputs are what the report reads."""
    monkeypatch.setitem(REGISTRY._specs, "db.check", spec("db.check", frozenset({"data_timestamp", "passed"})))
    for name in ("compute.start", "http.check", "dns.failover", "backup.copy"):
        monkeypatch.setitem(REGISTRY._specs, name, spec(name))


def checked(wall: WallClock, seconds: float, newest: datetime | str) -> Behaviour:
    """A db.check that found ``newest`` as the newest committed row."""
    value = newest if isinstance(newest, str) else newest.isoformat()
    return takes(wall, seconds, {"data_timestamp": value, "passed": 1})


def act(step_id: str, action: str, **kw: Any) -> dict[str, Any]:
    return {"id": step_id, "action": action, "with": {"tag": step_id}, **kw}


def recovery(
    harness: Harness,
    wall: WallClock,
    newest: datetime | str | None,
    *,
    disaster_at: datetime | None = None,
    rpo: str = "1h",
) -> RunReport:
    """restore (tier 1, 120s, point 30m old) -> boot (tier 2, 60s) -> check-db (tier 2, 30s; only when
    ``newest`` is given) -> dns (tier 3, 10s): one step at a time, so RTO is 220s (190s without check-db)."""
    RECORDER.behaviours["restore"] = restored(wall, 120, timedelta(minutes=30), timedelta(minutes=20))
    RECORDER.behaviours["boot"] = takes(wall, 60)
    RECORDER.behaviours["dns"] = takes(wall, 10)
    steps = [
        act("restore", "backup.restore"),
        act("boot", "compute.start", tier=2, needs=["restore"]),
        act("dns", "dns.failover", tier=3),
    ]
    if newest is not None:
        RECORDER.behaviours["check-db"] = checked(wall, 30, newest)
        steps.insert(2, act("check-db", "db.check", tier=2, needs=["boot"]))
    path = write_runbook(harness.directory, steps, objectives={"rto": "10m", "rpo": rpo})
    executor = harness.executor()
    outcome = executor.run(load_runbook(path), path, RunOptions(max_parallel=1), disaster_at=disaster_at)
    assert outcome.status == RunStatus.SUCCEEDED
    assert harness.journal is not None
    return build_report(harness.journal, outcome.run_id)


# -- RPO ----------------------------------------------------------------------------------------------------------


def test_rpo_by_data_is_the_run_start_minus_the_newest_restored_row(harness: Harness, wall: WallClock) -> None:
    report = recovery(harness, wall, T0 - timedelta(minutes=5))
    # The recovery point is 30 minutes old, but the data holds rows up to 5 minutes before the disaster.
    assert (report.rpo.measured_seconds, report.rpo.verdict) == (300, "pass")
    assert report.rpo_method == "data"
    assert (report.disaster_at, report.disaster_at_source) == (T0.isoformat(), "run start")
    assert report.rpo.detail.startswith("300s <= objective 3600s: disaster instant (run start) minus the newest")
    assert "check-db" in report.rpo.detail


def test_rpo_by_data_from_disaster_at_survives_in_the_journal(harness: Harness, wall: WallClock) -> None:
    disaster = T0 - timedelta(minutes=2)
    report = recovery(harness, wall, T0 - timedelta(minutes=5), disaster_at=disaster)
    assert (report.rpo.measured_seconds, report.rpo_method) == (180, "data")
    assert (report.disaster_at, report.disaster_at_source) == (disaster.isoformat(), "--disaster-at")
    assert f"--disaster-at {disaster.isoformat()}" in report.rpo.detail
    assert harness.journal is not None
    harness.journal.close()

    # `drctl report RUN_ID` later, from a fresh connection to the journal, gives the same answer.
    again = RunJournal(harness.directory / "runs.sqlite")
    try:
        assert again.run(report.run_id) is not None
        assert build_report(again, report.run_id) == report
    finally:
        again.close()
    harness.journal = None


def test_without_a_data_timestamp_rpo_falls_back_to_the_recovery_points_age(harness: Harness, wall: WallClock) -> None:
    report = recovery(harness, wall, None)
    assert (report.rpo.measured_seconds, report.rpo_method) == (1800, "recovery point age")
    assert report.rpo.detail.endswith("age of recovery point rp-1 (restored by restore) at run start")


def test_the_fallback_measures_the_points_age_at_the_disaster_instant(harness: Harness, wall: WallClock) -> None:
    report = recovery(harness, wall, None, disaster_at=T0 - timedelta(minutes=10))
    assert (report.rpo.measured_seconds, report.rpo_method) == (1200, "recovery point age")
    assert "at the disaster instant (--disaster-at " in report.rpo.detail


def test_data_newer_than_the_disaster_instant_is_rpo_zero_with_a_note(harness: Harness, wall: WallClock) -> None:
    # The primary kept writing after the run started: the copy holds a row from 90s after the start.
    report = recovery(harness, wall, T0 + timedelta(seconds=90), rpo="1m")
    assert (report.rpo.measured_seconds, report.rpo.verdict, report.rpo_method) == (0, "pass", "data")
    assert "RPO is 0" in report.rpo.detail
    (note,) = [n for n in report.notes if n.startswith("RPO is 0")]
    assert "90s after the disaster instant (run start)" in note
    assert "--disaster-at gives the real instant" in note
    assert f"- {markdown.cell(note)}" in markdown.render(report)


def test_the_last_data_check_in_tier_and_end_order_counts(harness: Harness, wall: WallClock) -> None:
    # An early check (tier 1) saw newer rows than the final one (tier 2): the final state is what counts.
    RECORDER.behaviours["early"] = checked(wall, 5, T0 - timedelta(seconds=10))
    RECORDER.behaviours["final"] = checked(wall, 5, T0 - timedelta(seconds=70))
    RECORDER.behaviours["later-in-tier-1"] = takes(wall, 50)
    steps = [
        act("early", "db.check"),
        act("later-in-tier-1", "compute.start", needs=["early"]),
        act("final", "db.check", tier=2),
    ]
    outcome = harness.run(steps, RunOptions(max_parallel=1))
    assert harness.journal is not None
    report = build_report(harness.journal, outcome.run_id)
    assert (report.rpo.measured_seconds, report.rpo_method) == (70, "data")
    assert "found by final" in report.rpo.detail


def test_an_unreadable_data_timestamp_leaves_rpo_unknown(harness: Harness, wall: WallClock) -> None:
    report = recovery(harness, wall, "2026-03-01 11:00")  # no offset: which zone?
    assert (report.rpo.measured_seconds, report.rpo.verdict, report.rpo_method) == (None, "unknown", "data")
    assert "not an ISO 8601 time with an offset" in report.rpo.detail


def test_a_failed_data_check_gives_no_data_timestamp(harness: Harness, wall: WallClock) -> None:
    RECORDER.behaviours["restore"] = restored(wall, 10, timedelta(minutes=30), timedelta(minutes=20))

    def failing(p: FakeParams, ctx: ActionContext) -> StepResult:
        return StepResult(StepStatus.FAILED, {"data_timestamp": T0.isoformat()}, "row count 0 < 1")

    RECORDER.behaviours["check-db"] = failing
    steps = [act("restore", "backup.restore"), act("check-db", "db.check", needs=["restore"], on_error="continue")]
    outcome = harness.run(steps, RunOptions(max_parallel=1), objectives={"rpo": "1h"})
    assert harness.journal is not None
    report = build_report(harness.journal, outcome.run_id)
    assert (report.rpo.measured_seconds, report.rpo_method) == (1800, "recovery point age")


# -- --disaster-at through the real command line ---------------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.mark.parametrize("command", ["run", "drill"])
@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2026-03-01T11:00:00", "has no time zone"),
        ((datetime.now(UTC) + timedelta(hours=1)).isoformat(), "is in the future"),
        ("yesterday", "is not a time"),
    ],
)
def test_a_naive_future_or_malformed_disaster_at_is_refused(
    harness: Harness, state: Path, capsys: pytest.CaptureFixture[str], command: str, value: str, words: str
) -> None:
    RECORDER.behaviours["only"] = lambda p, ctx: StepResult(StepStatus.SUCCEEDED, {"value": "ran"})
    path = write_runbook(harness.directory, [step("only")])
    code = cli.main([command, str(path), "--disaster-at", value])
    err = capsys.readouterr().err
    assert code == ExitCode.INVALID_INPUT
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"drctl: error: --disaster-at {value!r} {words}")
    assert RECORDER.calls("only") == 0  # refused before anything ran
    journal = RunJournal(journal_path(state))
    try:
        assert journal.runs() == []
    finally:
        journal.close()


def test_drctl_run_journals_the_disaster_instant_and_the_report_uses_it(
    harness: Harness, wall: WallClock, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    RECORDER.behaviours["check-db"] = checked(wall, 30, T0 - timedelta(minutes=3))
    path = write_runbook(harness.directory, [act("check-db", "db.check")], objectives={"rpo": "5m"})
    assert cli.main(["run", str(path), "--json", "--disaster-at", "2026-03-01T13:59:00+02:00"]) == ExitCode.OK
    run_id = json.loads(capsys.readouterr().out)["run_id"]

    assert cli.main(["report", run_id, "--format", "json"]) == ExitCode.OK
    doc = json.loads(capsys.readouterr().out)
    # 13:59+02:00 is 11:59 UTC; the newest row is from 11:57 UTC.
    assert (doc["disaster_at"], doc["disaster_at_source"]) == ("2026-03-01T11:59:00+00:00", "--disaster-at")
    assert (doc["rpo"]["measured_seconds"], doc["rpo"]["verdict"], doc["rpo_method"]) == (120, "pass", "data")


def test_disaster_at_accepts_z_and_converts_to_utc() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_disaster_at("2026-03-01T11:30:00Z", now) == datetime(2026, 3, 1, 11, 30, tzinfo=UTC)
    assert parse_disaster_at("2026-03-01T12:30:00+01:00", now) == datetime(2026, 3, 1, 11, 30, tzinfo=UTC)
    assert parse_disaster_at(None, now) is None
    with pytest.raises(InvalidInput, match="in the future"):
        parse_disaster_at("2026-03-01T12:00:01Z", now)


def test_drill_cleanup_refuses_a_disaster_instant(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["drill", "--cleanup", "some-run", "--disaster-at", "2026-03-01T11:00:00Z"])
    assert code == ExitCode.INVALID_INPUT
    assert "--disaster-at is for a drill run, not --cleanup" in capsys.readouterr().err


# -- an old journal -------------------------------------------------------------------------------------------------

V2_RUNS = """CREATE TABLE runs (run_id TEXT PRIMARY KEY, runbook_path TEXT NOT NULL, runbook_sha256 TEXT NOT NULL,
runbook_name TEXT NOT NULL, params TEXT NOT NULL, mode TEXT NOT NULL, status TEXT NOT NULL, started TEXT NOT NULL,
finished TEXT)"""


def test_a_journal_without_the_disaster_at_column_still_reports(harness: Harness, wall: WallClock) -> None:
    """A run journaled by a drctl of schema 2 (no ``runs.disaster_at``): rebuilt by hand, then opened."""
    report = recovery(harness, wall, T0 - timedelta(minutes=5))
    assert harness.journal is not None
    harness.journal.close()
    harness.journal = None
    db = sqlite3.connect(harness.directory / "runs.sqlite")
    db.execute("ALTER TABLE runs RENAME TO runs_new")
    db.execute(V2_RUNS)
    db.execute(
        "INSERT INTO runs SELECT run_id, runbook_path, runbook_sha256, runbook_name, params, mode, status, "
        "started, finished FROM runs_new"
    )
    db.execute("DROP TABLE runs_new")
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()

    old = RunJournal(harness.directory / "runs.sqlite")
    try:
        record = old.run(report.run_id)
        assert record is not None
        assert record.disaster_at is None
        assert build_report(old, report.run_id) == report
        assert [r.run_id for r in old.runs()] == [report.run_id]
    finally:
        old.close()


# -- phases ---------------------------------------------------------------------------------------------------------


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def ran(
    step_id: str, action: str | None, start: float, end: float | None, tier: int = 1, status: str = "succeeded"
) -> StepReport:
    return StepReport(
        step_id=step_id,
        action=action,
        tier=tier,
        status=status,
        attempts=(),
        started=at(start),
        finished=None if end is None else at(end),
        duration_seconds=None,
        outputs={},
        error=None,
        approval=None,
    )


def measured(seconds: float | None) -> ObjectiveCheck:
    return ObjectiveCheck("rto", None, seconds, "unknown", "")


def test_every_action_of_the_brief_has_its_phase_and_the_rest_are_other() -> None:
    expected = {
        "backup.copy": "copy",
        "backup.verify": "verify",
        "backup.restore": "restore",
        "db.restore": "restore",
        "compute.start": "boot",
        "compute.launch": "boot",
        "image.ensure": "boot",
        "compute.wait_healthy": "health",
        "http.check": "health",
        "db.check": "health",
        "dns.failover": "dns",
        "dns.failback": "dns",
    }
    assert dict(PHASE_OF_ACTION) == expected
    assert {phase_of(a) for a in ("shell", "wait", "notify", "compute.stop", "fake", None)} == {"other"}
    assert set(expected.values()) | {"other"} == set(PHASES)


def test_union_of_intervals_is_not_their_sum() -> None:
    t = [T0 + timedelta(seconds=s) for s in range(0, 400, 10)]
    assert union_seconds([(t[0], t[10]), (t[5], t[15]), (t[20], t[25])], t[0], t[30]) == 200
    assert union_seconds([(t[0], t[10]), (t[0], t[10])], t[0], t[30]) == 100
    assert union_seconds([(t[0], t[10]), (t[10], t[12])], t[0], t[30]) == 120  # touching: one stretch
    assert union_seconds([(t[0], t[30])], t[5], t[10]) == 50  # clipped
    assert union_seconds([(t[20], t[30])], t[0], t[10]) == 0  # outside the window


def test_parallel_steps_of_a_phase_count_once_and_phases_may_overlap() -> None:
    steps = (
        ran("restore-a", "backup.restore", 0, 100),
        ran("restore-b", "db.restore", 50, 150),  # overlaps restore-a: restore is 150s, not 200s
        ran("start-web", "compute.start", 120, 200, tier=2),  # overlaps restore-b: another phase
        ran("start-app", "compute.launch", 130, 180, tier=2),
        ran("health", "http.check", 200, 260, tier=3),
        ran("note", "notify", 260, 261, tier=3),
    )
    phases = rto_phases(at(0), at(300), measured(240), steps)
    assert phases is not None
    assert (phases.window, phases.start, phases.end, phases.seconds) == ("rto", at(0), at(240), 240)
    got = {p.phase: (p.seconds, p.share_of_rto, p.steps) for p in phases.phases}
    assert got == {
        "restore": (150, 150 / 240, ("restore-a", "restore-b")),
        "boot": (80, 80 / 240, ("start-web", "start-app")),
        "health": (40, 40 / 240, ("health",)),  # 200-260 clipped to the RTO's end at 240
        "other": (0, 0, ("note",)),  # ran after the RTO's end
    }
    assert [p.phase for p in phases.phases] == ["restore", "boot", "health", "other"]
    assert sum(p.share_of_rto or 0 for p in phases.phases) > 1  # overlapping phases: more than 100%
    assert phases.idle_seconds == 0
    assert phases.note == OVERLAP_NOTE


def test_phases_of_a_failed_run_cover_the_run_without_shares() -> None:
    steps = (
        ran("copy", "backup.copy", 0, 40),
        ran("boot", "compute.start", 60, 90, tier=2, status="failed"),
        replace(ran("dns", "dns.failover", 0, 95, tier=3, status="skipped"), started=None),
    )
    rto = check_rto(at(0), RunStatus.FAILED, steps, timedelta(minutes=5), True)
    assert (rto.verdict, rto.measured_seconds) == ("fail", None)
    phases = rto_phases(at(0), at(100), rto, steps)
    assert phases is not None
    assert (phases.window, phases.end, phases.seconds, phases.idle_seconds) == ("run", at(100), 100, 30)
    assert [(p.phase, p.seconds, p.share_of_rto) for p in phases.phases] == [("copy", 40, None), ("boot", 30, None)]
    assert phases.note.startswith("no RTO was measured")


def test_a_step_still_running_counts_up_to_the_windows_end() -> None:
    steps = (ran("copy", "backup.copy", 0, 10), ran("verify", "backup.verify", 10, None, tier=2, status="running"))
    phases = rto_phases(at(0), None, measured(None), steps)
    assert phases is not None
    assert [(p.phase, p.seconds) for p in phases.phases] == [("copy", 10), ("verify", 0)]
    assert (phases.window, phases.end) == ("run", at(10))


def test_phases_start_at_a_steps_first_attempt_not_when_it_was_queued(harness: Harness, wall: WallClock) -> None:
    report = recovery(harness, wall, T0 - timedelta(minutes=5))
    phases = report.rto_phases
    assert phases is not None
    assert report.rto.measured_seconds == 220
    got = {p.phase: (p.seconds, p.share_of_rto) for p in phases.phases}
    assert got == {"restore": (120, 120 / 220), "boot": (60, 60 / 220), "health": (30, 30 / 220), "dns": (10, 10 / 220)}


def test_unknown_step_actions_give_no_phases(harness: Harness, wall: WallClock) -> None:
    report = recovery(harness, wall, T0 - timedelta(minutes=5))
    (harness.directory / "rb.yaml").write_text("changed")
    assert harness.journal is not None
    again = build_report(harness.journal, report.run_id)
    assert again.rto_phases is None
    assert again.rpo_method == "data"  # the data check needs no action names: its output says it all
    assert "cannot be split into phases" in markdown.render(again)


# -- every format -------------------------------------------------------------------------------------------------


def test_json_carries_the_phases_the_method_and_the_disaster_instant(harness: Harness, wall: WallClock) -> None:
    report = recovery(harness, wall, T0 - timedelta(minutes=5), disaster_at=T0 - timedelta(minutes=1))
    text = json_report.render(report)
    assert json_report.parse(text) == report
    doc = json.loads(text)
    assert {"rto", "rpo", "steps", "notes", "cleanup"} <= set(doc)  # the keys that were there stay
    assert (doc["rpo_method"], doc["disaster_at_source"]) == ("data", "--disaster-at")
    assert doc["disaster_at"] == (T0 - timedelta(minutes=1)).isoformat()
    phases = doc["rto_phases"]
    assert (phases["window"], phases["seconds"], phases["idle_seconds"]) == ("rto", 220, 0)
    assert phases["phases"][0] == {"phase": "restore", "seconds": 120, "share_of_rto": 120 / 220, "steps": ["restore"]}
    assert "need not add up to 100%" in phases["note"]


def test_markdown_html_and_junit_show_the_phases_and_the_rpo_method(harness: Harness, wall: WallClock) -> None:
    report = recovery(harness, wall, T0 - timedelta(minutes=5))

    text = markdown.render(report)
    assert "| Disaster instant | 2026-03-01T12:00:00+00:00 (run start) |" in text
    assert "RPO method: data (newest restored row); disaster instant: 2026-03-01T12:00:00+00:00 (run start)." in text
    section = text.split("## RTO by phase\n", 1)[1]
    assert "| restore | 2m00s | 55% | restore |" in section
    assert "| health | 30.0s | 14% | check-db |" in section
    assert "need not add up to 100%" in section

    page = html.render(report)
    assert '<section id="phases"><h2>RTO by phase</h2>' in page
    assert '<tr class="phase" data-phase="boot"><td>boot</td><td class="num">1m00s</td><td class="num">27%</td>' in page
    assert "Method: <strong>data (newest restored row)</strong>" in page

    props = {p.get("name"): p.get("value") for p in ET.fromstring(junit.render(report)).iter("property")}
    assert (props["rpo_method"], props["disaster_at_source"]) == ("data", "run start")
    assert (props["rto_phase.dns.seconds"], props["rto_phase.dns.share"]) == ("10.000", f"{10 / 220:.4f}")


def test_the_drill_summary_shows_rto_phases_and_the_rpo_method(
    harness: Harness, wall: WallClock, capsys: pytest.CaptureFixture[str]
) -> None:
    report = recovery(harness, wall, T0 - timedelta(minutes=5))
    drill_command._summary(report, [], kept=False)
    lines = capsys.readouterr().out.splitlines()
    rto = next(i for i, line in enumerate(lines) if line.startswith("  RTO"))
    assert lines[rto + 1] == (
        "       phases: restore 2m00s (55%) · boot 1m00s (27%) · health 30.0s (14%) · dns 10.0s (5%)"
        " (phases may overlap)"
    )
    rpo = next(i for i, line in enumerate(lines) if line.startswith("  RPO"))
    assert lines[rpo].startswith("  RPO  PASS    300s <= objective 3600s: disaster instant (run start)")
    assert lines[rpo + 1] == (
        "       method: data (newest restored row); disaster instant: 2026-03-01T12:00:00+00:00 (run start)"
    )
    doc = drill_command._outcome_doc(report, [], kept=False)
    assert doc["rpo"]["method"] == "data"
    assert [p["phase"] for p in doc["rto"]["phases"]["phases"]] == ["restore", "boot", "health", "dns"]
