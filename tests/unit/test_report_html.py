"""The HTML run report: one self-contained page (no external reference of any kind), every run-supplied text
escaped, a timeline with one bar per attempt in tier order, verdicts in words, a drill's cleanup, and secrets
masked on the command's render path. Reports are built directly (``sample_report``) for exact timings, and
from a real executor run for the command path; the browser test renders the same sample in Chromium."""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _typeshed import TraceFunction

from orchestrator.commands import report as report_command
from orchestrator.commands.report import RENDERERS, render
from orchestrator.engine.executor import RunOptions
from orchestrator.engine.redact import looks_secret
from orchestrator.errors import ExitCode
from orchestrator.report import html
from orchestrator.report.model import (
    AttemptReport,
    CleanupReport,
    ObjectiveCheck,
    RunReport,
    StepReport,
    build_report,
    rto_phases,
)
from tests.unit.test_executor import RECORDER, Harness, fake_action, harness, step
from tests.unit.test_report import WallClock, fake_restore, recovery_run, takes, wall

__all__ = ["fake_action", "fake_restore", "harness", "wall"]  # pytest fixtures, used by name

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert("pwned")</script> & <img src=x onerror=alert(1)>'


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def attempt(
    number: int, start: float, end: float | None, status: str | None, error: str | None = None
) -> AttemptReport:
    return AttemptReport(number, at(start), None if end is None else at(end), status, error)


def make_step(
    step_id: str,
    tier: int | None,
    attempts: tuple[AttemptReport, ...],
    status: str = "succeeded",
    action: str | None = "compute.start",
    error: str | None = None,
    approval: str | None = None,
    skip_reason: str | None = None,
    scheduled: float | None = None,
) -> StepReport:
    first = attempts[0].started if attempts else None
    last = attempts[-1].finished if attempts else None
    started = at(scheduled) if scheduled is not None else first
    duration = None
    if first and last:
        duration = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
    return StepReport(
        step_id, action, tier, status, attempts, started, last, duration, {}, error, approval, skip_reason
    )


def sample_report(mode: str = "drill", cleanup: tuple[CleanupReport, ...] | None = None) -> RunReport:
    """A drill over three tiers: a retried step, a failed step with hostile text, a skipped step, a gated
    step, RTO met (330s of 600s) and RPO met; and four cleanup records."""
    steps = (
        make_step("restore-db", 1, (attempt(1, 0, 120, "succeeded"),), action="backup.restore"),
        make_step("copy-images", 1, (attempt(1, 2, 95, "succeeded"),), action="backup.copy"),
        make_step(
            "start-app",
            2,
            (attempt(1, 150, 300, "succeeded"),),
            approval="auto-approved (drill)",
            scheduled=120,
        ),
        make_step(
            "health-check",
            2,
            (attempt(1, 125, 155, "failed", "503 from the health endpoint"), attempt(2, 157, 190, "succeeded")),
            action="http.check",
        ),
        make_step(
            "migrate-<b>schema</b>",
            2,
            (attempt(1, 125, 140, "failed", HOSTILE),),
            status="failed",
            action="shell",
            error=HOSTILE + "\nsecond line of the error",
        ),
        make_step("switch-dns", 3, (attempt(1, 300, 330, "succeeded"),), action="dns.switch"),
        make_step(
            "smoke-after-migrate",
            3,
            (),
            status="skipped",
            action="shell",
            skip_reason="needs 'migrate-<b>schema</b>', which did not succeed",
        ),
    )
    # The executor stamps a skipped step's end with the moment it decided to skip it.
    steps = (*steps[:-1], replace(steps[-1], finished=at(140)))
    records = (
        CleanupReport("instance", "i-0abc123", "us-east-1", "removed", at(340)),
        CleanupReport("image", "ami-0def456", "us-east-1", "removed", at(342)),
        CleanupReport("dns-record", "app.drill.example.", "Z123", "already gone", at(344)),
        CleanupReport("objects", "drill-bucket/db/", "us-east-1", "failed", at(346), "AccessDenied: <nope>"),
    )
    return RunReport(
        run_id="run-20260301-120000-ab12",
        runbook_name="failover-aws-to-azure",
        runbook_path="runbooks/failover.yaml",
        mode=mode,
        status="partially_failed",
        started=at(0),
        finished=at(350),
        params={"mode": "full", "note": "<i>hi</i>"},
        steps=steps,
        events=(),
        rto=ObjectiveCheck("rto", 600, 330, "pass", "330s <= objective 600s: run start to the end of switch-dns"),
        rpo=ObjectiveCheck("rpo", 3600, None, "unknown", "no backup.restore step recorded a point"),
        notes=("a note with <angle> brackets",),
        cleanup=records if cleanup is None else cleanup,
    )


def big_report(count: int = 240) -> RunReport:
    """``count`` steps over six tiers, every fifth step retried once: the scale the page must stay fast at."""
    steps = []
    for i in range(count):
        tier = 1 + i * 6 // count
        base = tier * 100.0 + i % 7
        attempts: tuple[AttemptReport, ...] = (attempt(1, base, base + 20, "succeeded"),)
        if i % 5 == 0:
            attempts = (
                attempt(1, base, base + 8, "failed", f"flaky {i}"),
                attempt(2, base + 10, base + 30, "succeeded"),
            )
        steps.append(make_step(f"step-{i:03d}", tier, attempts))
    return replace(sample_report(), steps=tuple(steps))


class Page(HTMLParser):
    """The page's elements as (tag, attributes) and its text, from the stdlib parser: what a browser sees."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, cls: str = "") -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and (not cls or cls in a.get("class", "").split())]


def bars(page: Page) -> list[dict[str, str]]:
    return page.find("rect", "bar")


# -- self-contained ----------------------------------------------------------------------------------------


def test_the_page_references_nothing_outside_itself() -> None:
    text = html.render(sample_report())
    assert text.startswith("<!DOCTYPE html>")
    assert "http://" not in text
    assert "https://" not in text
    for _, attrs in Page(text).elements:
        for name, value in attrs.items():
            assert name not in ("src", "href", "srcset", "xlink:href", "action", "background"), (name, value)
            assert not name.startswith("on"), name  # no inline event handler
    assert "<script" not in text.lower().replace("&lt;script", "")  # only escaped text mentions a script
    assert "<link" not in text
    assert "@import" not in text
    # url() only ever points into the page itself (the hatch pattern).
    for target in re.findall(r"url\(\s*([^)]*)\)", text):
        assert target.strip("'\" ").startswith("#"), target
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.IGNORECASE)
    assert "default-src 'none'" in text


# -- escaping -----------------------------------------------------------------------------------------------


def test_run_supplied_text_is_escaped_everywhere() -> None:
    text = html.render(sample_report())
    page = Page(text)
    assert "<script>" not in text
    assert "<img" not in text
    assert "<b>schema</b>" not in text
    assert "<i>hi</i>" not in text
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in text
    assert not page.find("script")
    assert not page.find("img")
    assert not page.find("b")
    # The text a reader sees is the original text, intact.
    seen = "".join(page.text)
    assert HOSTILE in seen
    assert "migrate-<b>schema</b>" in seen
    assert "note=<i>hi</i>" in seen
    assert "a note with <angle> brackets" in seen
    assert "AccessDenied: <nope>" in seen
    # An escaped step id is still the same id in the data attributes tests and tools select on.
    assert {b["data-step"] for b in bars(page)} >= {"migrate-<b>schema</b>"}


def test_control_characters_and_surrogates_never_reach_the_page() -> None:
    report = sample_report()
    bad = replace(report.steps[0], error="bell\x07 esc\x1b lone\ud800 end", status="failed")
    text = html.render(replace(report, steps=(bad, *report.steps[1:])))
    assert "\x07" not in text
    assert "\x1b" not in text
    text.encode("utf-8")  # writable as the file the command produces
    assert "bell\ufffd esc\ufffd lone\ufffd end" in text


# -- the timeline -------------------------------------------------------------------------------------------


def test_the_timeline_has_one_bar_per_attempt_with_failures_and_retries_marked() -> None:
    report = sample_report()
    page = Page(html.render(report))
    svgs = [a for t, a in page.elements if t == "svg" and a.get("id") == "timeline"]
    assert len(svgs) == 1
    drawn = bars(page)
    expected = [(s.step_id, str(a.number)) for s in report.steps for a in s.attempts]
    assert sorted((b["data-step"], b["data-attempt"]) for b in drawn) == sorted(expected)
    assert len(drawn) == 7
    failed = [b for b in drawn if "failed" in b["class"].split()]
    assert sorted((b["data-step"], b["data-attempt"]) for b in failed) == [
        ("health-check", "1"),
        ("migrate-<b>schema</b>", "1"),
    ]
    text = html.render(report)
    assert "<title>attempt 1 failed: 503 from the health endpoint\n" in text
    assert text.count('class="fail-mark') == 2
    assert len(re.findall(r'class="retry-mark"[^>]*>retried \u00d71<', text)) == 1
    skipped = page.find("g", "skip-mark")
    assert [g["data-step"] for g in skipped] == ["smoke-after-migrate"]


def test_bars_sit_where_their_attempts_ran() -> None:
    page = Page(html.render(sample_report()))
    by = {(b["data-step"], b["data-attempt"]): b for b in bars(page)}
    first, retry = by[("health-check", "1")], by[("health-check", "2")]
    assert float(first["x"]) < float(retry["x"])
    # 30s and 33s attempts: the widths are in proportion.
    assert float(retry["width"]) / float(first["width"]) == pytest.approx(33 / 30, rel=0.02)
    assert float(by[("restore-db", "1")]["x"]) < float(by[("switch-dns", "1")]["x"])


def test_tiers_are_banded_in_order_and_rows_follow_them() -> None:
    report = sample_report()
    shuffled = replace(report, steps=tuple(reversed(report.steps)))
    page = Page(html.render(shuffled))
    labels = [a for t, a in page.elements if t == "g" and "tier" in a.get("class", "").split()]
    assert [g["data-tier"] for g in labels] == ["1", "2", "3"]
    text = html.render(shuffled)
    assert text.index(">Tier 1<") < text.index(">Tier 2<") < text.index(">Tier 3<")
    rows = [a["data-tier"] for t, a in page.elements if t == "g" and "row" in a.get("class", "").split()]
    assert rows == sorted(rows)
    bands = page.find("rect", "tier-band")
    tops = [float(b["y"]) for b in bands]
    assert tops == sorted(tops)
    assert len(tops) == 3


def test_unknown_tiers_come_last() -> None:
    report = sample_report()
    odd = make_step("mystery", None, (attempt(1, 5, 10, "succeeded"),), action=None)
    text = html.render(replace(report, steps=(odd, *report.steps)))
    assert text.index(">Tier 3<") < text.index(">Tier ?<")


def test_rto_markers_are_drawn_for_the_objective_and_the_measurement() -> None:
    page = Page(html.render(sample_report()))
    markers = {m["class"]: m for m in page.find("g", "marker")}
    assert set(markers) == {"marker rto-objective", "marker rto-measured verdict-pass"}
    assert markers["marker rto-objective"]["data-seconds"] == "600"
    assert markers["marker rto-measured verdict-pass"]["data-seconds"] == "330"
    no_rto = replace(sample_report(), rto=ObjectiveCheck("rto", None, None, "unknown", "no step ran"))
    assert not Page(html.render(no_rto)).find("g", "marker")


def test_an_objective_far_beyond_the_run_is_named_not_drawn_to_scale() -> None:
    report = sample_report()
    far = replace(report, rto=replace(report.rto, objective_seconds=24 * 3600.0))
    page = Page(html.render(far))
    markers = {m["class"] for m in page.find("g", "marker")}
    assert markers == {"marker rto-measured verdict-pass"}  # the axis still spans the run, not a day
    assert "lies far beyond this run" in html.render(far)
    assert "lies far beyond this run" not in html.render(report)


def test_a_sub_second_run_gets_tenths_on_its_axis() -> None:
    from orchestrator.report import html_timeline

    assert html_timeline._tick_step(1.3) == 0.2
    assert [html_timeline._tick_label(t) for t in (0.0, 0.2, 0.6000000000000001, 1.0, 1.2, 90.0)] == [
        "0",
        "0.2s",
        "0.6s",
        "1s",
        "1.2s",
        "1m30s",
    ]


def test_unparseable_times_do_not_break_the_render() -> None:
    report = sample_report()
    broken = replace(
        report.steps[0], attempts=(AttemptReport(1, "yesterday-ish", "later", "succeeded", None),), started="??"
    )
    naive = replace(report.steps[1], attempts=(AttemptReport(1, "2026-03-01T12:00:05", None, None, None),))
    text = html.render(replace(report, steps=(broken, naive, *report.steps[2:]), finished="not a time"))
    assert "2 attempt(s) have an unreadable start time and are not drawn" in text
    assert "not a time" in text  # shown as it was recorded
    nothing = replace(report, started="garbage", finished=None)
    text = html.render(replace(nothing, steps=tuple(replace(s, attempts=(), started=None) for s in nothing.steps)))
    assert "No timestamp of this run could be read" in text
    # The run's start unreadable but attempts readable: the axis starts at the earliest attempt.
    text = html.render(replace(report, started="garbage"))
    assert "since first recorded time" in text
    assert len(bars(Page(text))) == 7


def test_an_unfinished_attempt_runs_to_the_last_known_time_and_an_empty_run_renders() -> None:
    report = sample_report()
    running = make_step("still-going", 3, (attempt(1, 310, None, None),), status="running")
    text = html.render(replace(report, status="running", finished=None, steps=(*report.steps, running)))
    bar = next(b for b in bars(Page(text)) if b["data-step"] == "still-going")
    assert bar["class"] == "bar open"
    assert "attempt 1 running or cut short" in text
    empty = Page(html.render(replace(report, steps=(), cleanup=())))
    assert not bars(empty)
    assert "This run has no steps." in "".join(empty.text)


def test_long_step_ids_are_cut_in_the_timeline_but_whole_elsewhere() -> None:
    long_id = "restore-the-primary-database-cluster-from-the-vault-copy-now"
    report = sample_report()
    text = html.render(replace(report, steps=(replace(report.steps[0], step_id=long_id), *report.steps[1:])))
    assert ">restore-the-primary-database-…<" in text
    assert f'<td class="mono">{long_id}</td>' in text


def _render_steps_executed(report: RunReport) -> int:
    """Python lines and calls executed by one render: a count, not a time, so a loaded machine cannot move it."""
    executed = 0

    def trace(frame: FrameType, event: str, arg: Any) -> TraceFunction:
        nonlocal executed
        executed += 1
        return trace

    sys.settrace(trace)
    try:
        html.render(report)
    finally:
        sys.settrace(None)
    return executed


def test_a_big_run_renders_every_step_in_linear_time() -> None:
    big = big_report(240)
    text = html.render(big)
    assert len(bars(Page(text))) == sum(len(s.attempts) for s in big.steps) == 288
    assert text.count('class="retry-mark"') == 48
    # 8x the steps: linear rendering executes 7.7x the lines and calls; a pass over step pairs would execute
    # about 64x. (A timed ratio here failed under load, when other processes took the cores.)
    assert _render_steps_executed(big_report(960)) < _render_steps_executed(big_report(120)) * 12


# -- objectives, summary, cleanup, notes ---------------------------------------------------------------------


def objective_card(text: str, name: str) -> str:
    match = re.search(rf'<article class="objective[^"]*" id="{name}".*?</article>', text, re.DOTALL)
    assert match is not None
    return match.group(0)


def test_verdicts_are_worded_not_only_coloured() -> None:
    report = sample_report()
    text = html.render(report)
    rto, rpo = objective_card(text, "rto"), objective_card(text, "rpo")
    assert "PASS" in rto
    assert 'class="verdict v-pass"' in rto
    assert "5m30s" in rto
    assert "10m00s" in rto
    assert "330s &lt;= objective 600s" in rto
    assert "UNKNOWN" in rpo
    assert "not measured" in rpo
    assert "1h00m00s" in rpo
    failing = replace(report, rto=ObjectiveCheck("rto", 300, 330, "fail", "330s > objective 300s"))
    rto = objective_card(html.render(failing), "rto")
    assert "FAIL" in rto
    assert "verdict-fail" in rto


def test_the_summary_names_the_run() -> None:
    text = html.render(sample_report())
    assert '<span class="badge mode-drill"' in text
    assert ">DRILL<" in text
    assert "failover-aws-to-azure" in text
    assert "run-20260301-120000-ab12" in text
    assert "partially failed" in text
    assert "2026-03-01 12:00:00 UTC" in text
    assert "2026-03-01 12:05:50 UTC" in text
    assert "5m50s" in text
    failover = html.render(sample_report(mode="failover"))
    assert ">DRILL<" not in failover
    assert ">FAILOVER<" in failover


def test_the_steps_table_has_every_step_with_its_details() -> None:
    report = sample_report()
    page = Page(html.render(report))
    rows = page.find("tr", "step")
    assert [r["data-step"] for r in rows] == [s.step_id for s in report.steps]
    text = html.render(report)
    assert "auto-approved (drill)" in text
    assert "skipped: needs &#x27;migrate-&lt;b&gt;schema&lt;/b&gt;&#x27;, which did not succeed" in text
    assert "#1 failed: 503 from the health endpoint" in text
    assert "second line of the error" in text  # the full error, folded under its first line


def test_a_drill_lists_its_cleanup_and_says_when_there_is_none() -> None:
    text = html.render(sample_report())
    section = re.search(r'<section id="cleanup">.*?</section>', text, re.DOTALL)
    assert section is not None
    for expected in ("i-0abc123", "ami-0def456", "app.drill.example.", "already gone", "AccessDenied: &lt;nope&gt;"):
        assert expected in section.group(0)
    assert "2 removed · 1 already gone · 1 failed" in section.group(0)
    empty = html.render(sample_report(cleanup=()))
    assert '<section id="cleanup">' in empty
    assert "No cleanup records" in empty
    assert '<section id="cleanup">' not in html.render(sample_report(mode="failover", cleanup=()))


def test_the_rto_is_split_into_phases_and_the_rpo_names_its_method() -> None:
    report = sample_report()
    phases = rto_phases(report.started, report.finished, report.rto, report.steps)
    report = replace(
        report,
        rto_phases=phases,
        rpo_method="recovery point age",
        disaster_at=at(-60),
        disaster_at_source="--disaster-at",
    )
    text = html.render(report)
    section = re.search(r'<section id="phases">.*?</section>', text, re.DOTALL)
    assert section is not None
    page = Page(section.group(0))
    seen = "".join(page.text)
    assert [r["data-phase"] for r in page.find("tr", "phase")] == ["copy", "restore", "boot", "health", "other"]
    # start-app waited 30s for a worker: its phase counts from its first attempt (150s to 300s), not from 120s.
    assert "boot2m30s45%start-app" in seen
    assert "restore2m00s36%restore-db" in seen
    assert "migrate-&lt;b&gt;schema&lt;/b&gt;, switch-dns" in section.group(0)  # escaped like every run text
    assert "No step running: 5.0s" in section.group(0)
    assert "need not add up to 100%" in section.group(0)
    rpo = objective_card(text, "rpo")
    assert "Method: <strong>recovery point age</strong>" in rpo
    assert f"disaster instant: {at(-60)} (--disaster-at)" in rpo
    unknown = html.render(sample_report())  # no phases: step actions unknown
    assert "the time cannot be split into phases" in unknown


def test_notes_are_listed() -> None:
    assert "<li>a note with &lt;angle&gt; brackets</li>" in html.render(sample_report())
    assert '<section id="notes">' not in html.render(replace(sample_report(), notes=()))


# -- through the command ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_restore")
def test_the_command_offers_html_and_masks_secrets_in_it(harness: Harness, wall: WallClock) -> None:
    assert RENDERERS["html"] is html.render
    report = recovery_run(harness, wall, "10m", "1h", timedelta(minutes=30))
    secret = "s3cr3t-token-value-42"
    leaky = replace(
        report,
        params={**report.params, "token": secret},
        notes=(f"the token was {secret}",),
        steps=tuple(replace(s, error=f"denied with {secret} <x>") for s in report.steps),
    )
    text = render(leaky, "html", {"DRILL_API_TOKEN": secret, "STATUS_KEY": "status"})
    assert secret not in text
    assert "denied with *** &lt;x&gt;" in text
    assert "token=***" in text
    assert 'id="timeline"' in text  # masking a word of the page ("status") did not touch its markup
    assert len(bars(Page(text))) == 4


def test_the_command_writes_an_html_file(
    harness: Harness, wall: WallClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    RECORDER.behaviours["only"] = takes(wall, 3)
    outcome = harness.run([step("only")], RunOptions(mode="drill"), objectives={"rto": "1m"})
    assert harness.journal is not None
    report = build_report(harness.journal, outcome.run_id)
    monkeypatch.setenv("DRCTL_STATE_DIR", str(harness.directory))
    for name in list(os.environ):
        if looks_secret(name):
            monkeypatch.delenv(name)
    out = tmp_path / "report.html"
    parser = argparse.ArgumentParser()
    report_command.register(parser.add_subparsers())
    args = parser.parse_args(["report", report.run_id, "--format", "html", "--out", str(out)])
    assert args.handler(args) == ExitCode.OK
    page = Page(out.read_text(encoding="utf-8"))
    assert [b["data-step"] for b in bars(page)] == ["only"]
    assert "No cleanup records" in "".join(page.text)
