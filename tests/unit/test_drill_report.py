"""Reports of drills and failed runs: RTO counts toward the highest tier the run meant to reach (not the one it
got to), a drill's Markdown report lists its cleanup, and ``${run.id}`` / ``${run.mode}`` resolve at run time."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.actions.base import ActionContext, ActionParams, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.actions.registry import REGISTRY
from orchestrator.commands import drill as drill_command
from orchestrator.engine.executor import Executor, RunOptions, RunOutcome
from orchestrator.engine.journal import RunJournal, RunStatus, StepState
from orchestrator.report import markdown
from orchestrator.report.model import StepReport, build_report, check_rto
from orchestrator.runbook.loader import load_runbook
from orchestrator.runbook.problems import RunbookInvalid

T0 = datetime.fromisoformat("2026-11-26T12:00:00+00:00")


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def step_report(
    step_id: str,
    tier: int,
    status: str,
    *,
    ran: tuple[float, float] | None = None,
    skip_reason: str | None = None,
) -> StepReport:
    started, finished = (at(ran[0]), at(ran[1])) if ran else (None, at(0))
    return StepReport(
        step_id=step_id,
        action="fake",
        tier=tier,
        status=status,
        attempts=(),
        started=started,
        finished=finished,
        duration_seconds=None,
        outputs={},
        error="boom" if status == "failed" else None,
        approval=None,
        skip_reason=skip_reason,
    )


NOT_STARTED = "not started: the run failed"
OTHER_MODE = "runs only in failover mode; this is a drill"


# -- check_rto ----------------------------------------------------------------------------------------------------


def failed_in_tier_two() -> tuple[StepReport, ...]:
    return (
        step_report("db", 1, "succeeded", ran=(0, 30)),
        step_report("app", 2, "failed", ran=(30, 40)),
        *(step_report(f"t{tier}", tier, "skipped", skip_reason=NOT_STARTED) for tier in range(3, 7)),
    )


def test_a_run_that_failed_in_tier_two_of_six_fails_its_rto() -> None:
    check = check_rto(at(0), RunStatus.FAILED, failed_in_tier_two(), timedelta(hours=1), True)
    assert (check.verdict, check.measured_seconds) == ("fail", None)
    assert check.detail == "no step of tier 6 succeeded: recovery did not complete"
    assert check.objective_seconds == 3600.0


def test_a_failed_run_without_an_objective_is_unknown_not_pass() -> None:
    check = check_rto(at(0), RunStatus.FAILED, failed_in_tier_two(), None, True)
    assert (check.verdict, check.measured_seconds) == ("unknown", None)
    assert check.detail == "no step of tier 6 succeeded: recovery did not complete"


def test_an_interrupted_run_short_of_its_top_tier_is_unknown() -> None:
    check = check_rto(at(0), RunStatus.INTERRUPTED, failed_in_tier_two(), timedelta(hours=1), True)
    assert (check.verdict, check.detail) == ("unknown", "no step of tier 6 has succeeded yet")


def test_steps_of_the_other_mode_do_not_count_toward_the_top_tier() -> None:
    steps = (
        step_report("db", 1, "succeeded", ran=(0, 30)),
        step_report("app", 2, "succeeded", ran=(30, 95)),
        step_report("app-2", 2, "succeeded", ran=(30, 80)),
        step_report("dns", 3, "skipped", skip_reason=OTHER_MODE),
    )
    check = check_rto(at(0), RunStatus.SUCCEEDED, steps, timedelta(minutes=2), True)
    assert (check.verdict, check.measured_seconds) == ("pass", 95.0)
    assert check.detail == "95s <= objective 120s: run start to the end of the last successful tier-2 step"


def test_a_step_skipped_for_a_failed_need_still_counts() -> None:
    steps = (
        step_report("db", 1, "succeeded", ran=(0, 30)),
        step_report("app", 2, "failed", ran=(30, 40)),
        step_report("dns", 3, "skipped", skip_reason="needs 'app', which did not succeed"),
    )
    check = check_rto(at(0), RunStatus.PARTIALLY_FAILED, steps, timedelta(hours=1), True)
    assert check.verdict == "fail"
    assert check.detail == "no step of tier 3 succeeded: recovery did not complete"


def test_a_slow_run_fails_and_a_run_of_unknown_tiers_is_unknown() -> None:
    steps = (step_report("db", 1, "succeeded", ran=(0, 300)),)
    assert check_rto(at(0), RunStatus.SUCCEEDED, steps, timedelta(minutes=2), True).verdict == "fail"
    unknown = check_rto(at(0), RunStatus.SUCCEEDED, steps, timedelta(minutes=2), False)
    assert (unknown.verdict, unknown.detail) == ("unknown", "step tiers are unknown (see notes)")


# -- through the executor: a fake action ----------------------------------------------------------------------


class EchoParams(ActionParams):
    value: str = ""
    fail: bool = False
    resource: str | None = None


@dataclass
class Echoes:
    values: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


ECHOES = Echoes()


def echo(p: EchoParams, ctx: ActionContext) -> StepResult:
    """Echo ``value``; fail when asked; in a drill, note ``resource`` as something the drill made."""
    with ECHOES.lock:
        ECHOES.values[ctx.step_id] = p.value
    if p.fail:
        return StepResult(StepStatus.FAILED, {}, "asked to fail")
    if p.resource is not None and ctx.drill is not None:
        ctx.drill.record("instance", "eu-west-1", p.resource, {"step": ctx.step_id})
    return StepResult(StepStatus.SUCCEEDED, {"value": p.value})


ECHO = ActionSpec(
    name="test.echo",
    params=EchoParams,
    description="echo a value (tests only)",
    touches=lambda p: (Touch("runs", p.value),),
    idempotent=True,
    outputs=frozenset({"value"}),
    run=echo,
)


@pytest.fixture(autouse=True)
def echo_action(monkeypatch: pytest.MonkeyPatch) -> Echoes:
    monkeypatch.setitem(REGISTRY._specs, ECHO.name, ECHO)
    ECHOES.values.clear()
    return ECHOES


@dataclass
class Runner:
    directory: Path
    journal: RunJournal

    def write(self, steps: list[dict[str, Any]], **spec: Any) -> Path:
        doc = {"apiVersion": "drctl/v1", "kind": "Runbook", "metadata": {"name": "t"}, "spec": {"steps": steps, **spec}}
        path = self.directory / "rb.yaml"
        path.write_text(json.dumps(doc))
        return path

    def run(self, steps: list[dict[str, Any]], mode: str = "failover", **spec: Any) -> RunOutcome:
        path = self.write(steps, **spec)
        options = RunOptions(mode="drill" if mode == "drill" else "failover")
        return Executor(self.journal, env={}, sleep=lambda s: None).run(load_runbook(path), path, options)


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    journal = RunJournal(tmp_path / "runs.sqlite")
    try:
        yield Runner(tmp_path, journal)
    finally:
        journal.close()


def echo_step(step_id: str, tier: int = 1, **with_: Any) -> dict[str, Any]:
    return {"id": step_id, "action": ECHO.name, "tier": tier, "with": with_}


def test_a_run_failed_in_tier_two_of_six_reports_rto_fail(runner: Runner) -> None:
    steps = [echo_step("t1", 1), echo_step("t2", 2, fail=True)]
    steps += [echo_step(f"t{tier}", tier) for tier in range(3, 7)]
    outcome = runner.run(steps, objectives={"rto": "1h"})
    assert outcome.status == RunStatus.FAILED
    report = build_report(runner.journal, outcome.run_id)
    assert (report.rto.verdict, report.rto.detail) == ("fail", "no step of tier 6 succeeded: recovery did not complete")
    assert {s.step_id: s.skip_reason for s in report.steps if s.tier and s.tier > 2} == dict.fromkeys(
        ("t3", "t4", "t5", "t6"), NOT_STARTED
    )


def test_a_drill_skipping_failover_only_steps_measures_to_its_own_top_tier(runner: Runner) -> None:
    steps = [echo_step("t1", 1), echo_step("t2", 2), {**echo_step("dns", 3), "when": "failover"}]
    outcome = runner.run(steps, mode="drill", objectives={"rto": "1h"})
    assert outcome.status == RunStatus.SUCCEEDED
    assert outcome.steps["dns"] == StepState.SKIPPED
    report = build_report(runner.journal, outcome.run_id)
    (dns,) = [s for s in report.steps if s.step_id == "dns"]
    assert dns.skip_reason == "runs only in failover mode; this is a drill"
    assert report.rto.verdict == "pass"
    assert report.rto.detail.endswith("run start to the end of the last successful tier-2 step")
    t2 = next(s for s in report.steps if s.step_id == "t2")
    assert report.rto.measured_seconds == pytest.approx(
        (datetime.fromisoformat(str(t2.finished)) - datetime.fromisoformat(report.started)).total_seconds()
    )


# -- the Markdown report of a drill --------------------------------------------------------------------------------


def test_a_drill_report_lists_its_cleanup(runner: Runner) -> None:
    outcome = runner.run([echo_step("launch", resource="i-0drill1")], mode="drill")
    runner.journal.resource_cleaned(outcome.run_id, "instance", "eu-west-1", "i-0drill1", "removed")
    runner.journal.record_resource(outcome.run_id, "dns-record", "ZDRILL", "app.drill.example. A", {"previous": None})
    runner.journal.resource_cleaned(
        outcome.run_id, "dns-record", "ZDRILL", "app.drill.example. A", "failed", "Route53 throttled"
    )

    text = markdown.render(build_report(runner.journal, outcome.run_id))

    section = text.split("## Cleanup\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    assert lines[0] == "| Kind | Resource | Location | Outcome | When | Note |"
    assert len(lines) == 3
    assert lines[1].startswith("| instance | i-0drill1 | eu-west-1 | removed | 20")
    assert lines[2].startswith("| dns-record | app.drill.example. A | ZDRILL | failed | 20")
    assert lines[2].endswith("| Route53 throttled |")
    assert "The drill made nothing" not in text


def test_a_drill_report_shows_resources_not_yet_removed(runner: Runner) -> None:
    outcome = runner.run([echo_step("launch", resource="i-0kept")], mode="drill")
    report = build_report(runner.journal, outcome.run_id)
    assert [(c.kind, c.resource_id, c.outcome, c.at) for c in report.cleanup] == [
        ("instance", "i-0kept", "not yet removed", None)
    ]
    assert "| instance | i-0kept | eu-west-1 | not yet removed | — |" in markdown.render(report)


def test_a_drill_without_resources_says_so(runner: Runner) -> None:
    outcome = runner.run([echo_step("noop")], mode="drill")
    text = markdown.render(build_report(runner.journal, outcome.run_id))
    assert "## Cleanup\n\nThe drill made nothing that needed removing." in text


def test_a_failover_report_has_no_cleanup_section(runner: Runner) -> None:
    outcome = runner.run([echo_step("noop", resource="i-ignored")])
    assert "## Cleanup" not in markdown.render(build_report(runner.journal, outcome.run_id))
    assert runner.journal.resources(outcome.run_id) == []


# -- ${run.id} and ${run.mode} -----------------------------------------------------------------------------------


def test_run_references_resolve_at_run_time(runner: Runner, echo_action: Echoes) -> None:
    steps = [
        echo_step("whole", value="${run.id}"),
        echo_step("embedded", value="drills/${run.id}/${run.mode}"),
        echo_step("escaped", value="$${run.id}"),
    ]
    outcome = runner.run(steps, mode="drill")
    assert outcome.status == RunStatus.SUCCEEDED
    assert echo_action.values == {
        "whole": outcome.run_id,
        "embedded": f"drills/{outcome.run_id}/drill",
        "escaped": "${run.id}",
    }
    assert runner.journal.steps(outcome.run_id)["embedded"].outputs == {"value": f"drills/{outcome.run_id}/drill"}


def test_run_mode_of_a_failover(runner: Runner, echo_action: Echoes) -> None:
    outcome = runner.run([echo_step("mode", value="${run.mode}")])
    assert echo_action.values == {"mode": "failover"}
    assert outcome.run_id


def test_run_references_stay_unresolved_at_load_time(runner: Runner) -> None:
    loaded = load_runbook(runner.write([echo_step("whole", value="x-${run.id}")]))
    (step,) = loaded.runbook.spec.steps
    assert step.with_.model_dump()["value"] == "x-${run.id}"


@pytest.mark.parametrize("reference", ["${run.other}", "${run}", "${run.id.x}"])
def test_an_unknown_run_field_is_malformed_at_load_time(runner: Runner, reference: str) -> None:
    path = runner.write([echo_step("bad", value=f"a {reference}")])
    with pytest.raises(RunbookInvalid) as caught:
        load_runbook(path)
    messages = [str(d) for d in caught.value.diagnostics]
    expected = f"malformed reference '{reference}'; write ${{run.id}} or ${{run.mode}}"
    assert any(expected in m for m in messages), messages
    assert ECHOES.values == {}


# -- the drill's summary: RTO by phase, RPO with its method ---------------------------------------------------------


def test_a_failed_drill_summary_gives_the_runs_phases_without_shares(
    runner: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = [echo_step("t1", 1), echo_step("t2", 2, fail=True), echo_step("t3", 3)]
    outcome = runner.run(steps, mode="drill", objectives={"rto": "1h", "rpo": "1h"})
    assert outcome.status == RunStatus.FAILED
    report = build_report(runner.journal, outcome.run_id)
    phases = report.rto_phases
    assert phases is not None
    assert (phases.window, phases.end) == ("run", report.finished)
    assert [(p.phase, p.steps, p.share_of_rto) for p in phases.phases] == [("other", ("t1", "t2"), None)]

    drill_command._summary(report, [], kept=False)
    lines = capsys.readouterr().out.splitlines()
    (at_rto,) = [i for i, line in enumerate(lines) if line.startswith("  RTO  FAIL")]
    assert lines[at_rto + 1].startswith("       phases: other ")
    assert "%" not in lines[at_rto + 1]  # no RTO, no share of it
    assert "(phases may overlap)" not in lines[at_rto + 1]
    assert lines[at_rto + 3] == (f"       method: recovery point age; disaster instant: {report.started} (run start)")
    assert "## Run by phase (no RTO measured)" in markdown.render(report)
