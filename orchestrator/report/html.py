"""A run report as one self-contained HTML5 page, to attach to a post-incident review or a drill's ticket and
open anywhere, offline: the run's summary, RTO and RPO against the objectives, a Gantt-style timeline of every
attempt of every step by tier, the steps table, a drill's cleanup records and the report's notes.

Self-contained means the file loads nothing: styles are inline, the timeline is inline SVG, there is no
script, and a Content-Security-Policy ``default-src 'none'`` makes the browser refuse any fetch even if one
slipped in. Every text that comes from the run (step ids, errors, parameters, notes) is HTML-escaped; the
report's own words never depend on colour alone (verdicts and statuses are written out). A timestamp that
does not parse leaves that piece out of the timeline rather than failing the render, and the work is linear
in the number of steps and attempts so a 200-step run renders as fast as a small one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from orchestrator.report.html_style import CSS
from orchestrator.report.html_text import (
    OUTCOME_CLASS,
    STATUS_ICON,
    TIMES,
    VERDICT_ICON,
    esc,
    num,
    slug,
    truncate,
    when_text,
)
from orchestrator.report.html_timeline import Timeline, by_tier, tier_name
from orchestrator.report.markdown import VERDICT_WORD, disaster_instant, duration, rpo_method, share, step_list
from orchestrator.report.model import CleanupReport, ObjectiveCheck, RunReport, StepReport


def _pill(word: str, cls: str) -> str:
    return f'<span class="pill {cls}">{esc(STATUS_ICON.get(word, ""))} {esc(word.replace("_", " "))}</span>'


def _status_pill(status: str) -> str:
    return _pill(status, f"s-{slug(status)}")


def _summary(report: RunReport) -> str:
    drill = report.mode == "drill"
    badge = (
        '<span class="badge mode-drill" title="a rehearsal: nothing was failed over">DRILL</span>'
        if drill
        else f'<span class="badge mode-{slug(report.mode)}">{esc(report.mode.upper())}</span>'
    )
    counts: dict[str, int] = {}
    for step in report.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    tally = " · ".join(f"{n} {esc(s.replace('_', ' '))}" for s, n in sorted(counts.items())) or "none"
    facts = [
        ("Mode", esc(report.mode)),
        ("Started", when_text(report.started)),
        ("Finished", when_text(report.finished) if report.finished else "— (not finished)"),
        ("Duration", esc(duration(report.duration_seconds))),
        (f"Steps ({len(report.steps)})", tally),
    ]
    items = "".join(f"<div><dt>{esc(k)}</dt><dd>{v}</dd></div>" for k, v in facts)
    params = "".join(
        f'<code class="param">{esc(k)}={esc(v)}</code>' for k, v in sorted(report.params.items(), key=lambda kv: kv[0])
    )
    return (
        '<header class="summary" id="summary"><div class="title-row">'
        f'<h1 class="runbook">{esc(report.runbook_name)}</h1>{badge}{_status_pill(report.status)}</div>'
        f'<p class="sub">Run <code class="run-id">{esc(report.run_id)}</code> of runbook '
        f"<code>{esc(report.runbook_path)}</code></p>"
        f'<dl class="facts">{items}</dl>'
        + (f'<div class="params"><span class="k">Parameters</span>{params}</div>' if params else "")
        + "</header>"
    )


def _objective(check: ObjectiveCheck, method: str = "") -> str:
    long_name = "recovery time" if check.name == "rto" else "recovery point"
    verdict = check.verdict if check.verdict in VERDICT_WORD else "unknown"
    measured = duration(check.measured_seconds) if check.measured_seconds is not None else "not measured"
    objective = duration(check.objective_seconds) if check.objective_seconds is not None else "not set"
    gauge = ""
    m, o = check.measured_seconds, check.objective_seconds
    if m is not None and o is not None and math.isfinite(m) and math.isfinite(o) and max(m, o) > 0:
        top = max(m, o) * 1.08
        gauge = (
            f'<div class="gauge" aria-hidden="true"><div class="fill" style="width:{num(max(m, 0) / top * 100)}%">'
            f'</div><div class="target" style="left:{num(o / top * 100)}%"></div></div>'
        )
    return (
        f'<article class="objective verdict-{verdict}" id="{check.name}" data-verdict="{verdict}">'
        f"<header><h2>{check.name.upper()}<small>{long_name}</small></h2>"
        f'<span class="verdict v-{verdict}">{VERDICT_ICON[verdict]} {VERDICT_WORD[verdict]}</span></header>'
        '<div class="figures">'
        f'<div><span class="label">Measured</span><span class="value measured">{esc(measured)}</span></div>'
        f'<div><span class="label">Objective</span><span class="value target">{esc(objective)}</span></div>'
        f'</div>{gauge}<p class="detail">{esc(check.detail)}</p>{method}</article>'
    )


def _rpo_method(report: RunReport) -> str:
    return (
        f'<p class="detail method">Method: <strong>{esc(rpo_method(report))}</strong> · disaster instant: '
        f"{esc(disaster_instant(report))}</p>"
    )


def _phases(report: RunReport) -> str:
    phases = report.rto_phases
    if phases is None:
        body = '<p class="empty">Step actions are unknown (see notes): the time cannot be split into phases.</p>'
        return f'<section id="phases"><h2>RTO by phase</h2>{body}</section>'
    title = "RTO by phase" if phases.window == "rto" else "Run by phase (no RTO measured)"
    rows = "".join(
        f'<tr class="phase" data-phase="{esc(p.phase)}"><td>{esc(p.phase)}</td>'
        f'<td class="num">{esc(duration(p.seconds))}</td><td class="num">{esc(share(p.share_of_rto))}</td>'
        f'<td class="mono">{esc(step_list(p.steps))}</td></tr>'
        for p in phases.phases
    )
    rows = rows or '<tr><td colspan="4" class="empty">No step ran.</td></tr>'
    return (
        f'<section id="phases"><h2>{esc(title)}</h2><div class="scroll"><table class="phases">'
        "<thead><tr><th>Phase</th><th>Time</th><th>Share of RTO</th><th>Steps</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
        f'<p class="detail phase-note">No step running: {esc(duration(phases.idle_seconds))}. '
        f"Note: {esc(phases.note)}.</p></section>"
    )


def _legend(report: RunReport) -> str:
    items = [
        '<span><i class="sw ok"></i>attempt succeeded</span>',
        f'<span><i class="sw failed"></i>attempt failed ({TIMES})</span>',
        '<span><i class="sw open"></i>attempt unfinished</span>',
        '<span><i class="sw skip"></i>step skipped / not run</span>',
    ]
    if report.rto.objective_seconds is not None:
        items.append('<span><i class="sw obj"></i>RTO objective</span>')
    if report.rto.measured_seconds is not None:
        items.append(f'<span><i class="sw meas {report.rto.verdict}"></i>measured RTO</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def _timeline_section(report: RunReport) -> str:
    timeline = Timeline(report)
    svg = timeline.render()
    caveats = []
    if timeline.clock.origin is None and report.steps:
        caveats.append("No timestamp of this run could be read: the timeline shows the steps but no bars.")
    elif not timeline.clock.from_run_start:
        caveats.append("The run's start time could not be read: times are measured from the earliest one that can.")
    if timeline.undrawn:
        caveats.append(f"{timeline.undrawn} attempt(s) have an unreadable start time and are not drawn.")
    if timeline.objective_off_chart and report.rto.objective_seconds is not None:
        caveats.append(
            f"The RTO objective ({duration(report.rto.objective_seconds)}) lies far beyond this run and is not "
            "drawn to scale: the chart spans the run itself."
        )
    notes = "".join(f'<p class="caveat">{esc(c)}</p>' for c in caveats)
    return (
        '<section id="timeline-section"><h2>Timeline</h2>'
        f'<div class="scroll">{svg}</div>{_legend(report)}{notes}</section>'
    )


def _error_cell(step: StepReport) -> str:
    parts: list[str] = []
    error = (step.error or "").strip()
    if error:
        first = step.error_line
        if "\n" in error:
            parts.append(f'<details class="err"><summary>{esc(first)}</summary><pre>{esc(error)}</pre></details>')
        else:
            parts.append(f'<span class="err">{esc(first)}</span>')
    if step.skip_reason:
        parts.append(f'<span class="why">skipped: {esc(step.skip_reason)}</span>')
    return "".join(parts) or "—"


def _attempts_cell(step: StepReport) -> str:
    # With one attempt its error is the step's, already in the error column.
    failed = [a for a in step.attempts if a.status == "failed"] if len(step.attempts) > 1 else []
    lines = [str(len(step.attempts))]
    if len(step.attempts) > 1:
        lines.append(f' <span class="retry">(retried {TIMES}{len(step.attempts) - 1})</span>')
    for a in failed:
        why = (a.error or "").strip().splitlines()
        lines.append(f'<span class="att">#{a.number} failed{": " + esc(truncate(why[0], 160)) if why else ""}</span>')
    return "".join(lines)


def _steps_table(report: RunReport) -> str:
    rows: list[str] = []
    for tier, steps in by_tier(report.steps):
        rows.append(f'<tr class="tier-row"><td colspan="8">{esc(tier_name(tier))}</td></tr>')
        for s in steps:
            rows.append(
                f'<tr class="step status-{slug(s.status)}" data-step="{esc(s.step_id)}">'
                f'<td class="mono">{esc(s.step_id)}</td><td class="mono">{esc(s.action or "?")}</td>'
                f'<td class="num">{"?" if s.tier is None else s.tier}</td><td>{_status_pill(s.status)}</td>'
                f'<td class="attempts">{_attempts_cell(s)}</td><td class="num">{esc(duration(s.duration_seconds))}</td>'
                f"<td>{_error_cell(s)}</td><td>{esc(s.approval) if s.approval else '—'}</td></tr>"
            )
    body = "".join(rows) or '<tr><td colspan="8" class="empty">This run has no steps.</td></tr>'
    return (
        '<section id="steps"><h2>Steps</h2><div class="scroll"><table class="steps">'
        '<colgroup><col style="width:19%"><col style="width:12%"><col style="width:5%"><col style="width:11%">'
        '<col style="width:17%"><col style="width:8%"><col style="width:18%"><col style="width:10%"></colgroup>'
        "<thead><tr>"
        "<th>Step</th><th>Action</th><th>Tier</th><th>Status</th><th>Attempts</th><th>Duration</th>"
        f"<th>Error / skip reason</th><th>Approval</th></tr></thead><tbody>{body}</tbody></table></div></section>"
    )


def _cleanup_row(c: CleanupReport) -> str:
    cls = OUTCOME_CLASS.get(c.outcome, "neutral")
    return (
        f'<tr class="cleanup outcome-{slug(c.outcome)}"><td>{esc(c.kind)}</td>'
        f'<td class="mono">{esc(c.resource_id)}</td>'
        f'<td class="mono">{esc(c.location)}</td><td><span class="pill o-{cls}">{esc(c.outcome)}</span></td>'
        f"<td>{when_text(c.at)}</td><td>{esc(c.detail) if c.detail else '—'}</td></tr>"
    )


def _cleanup(report: RunReport) -> str:
    if report.mode != "drill" and not report.cleanup:
        return ""
    if not report.cleanup:
        body = (
            '<p class="empty cleanup-empty">No cleanup records: this drill recorded no resource as removed, '
            "already gone or failed to remove.</p>"
        )
    else:
        counts: dict[str, int] = {}
        for c in report.cleanup:
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
        tally = " · ".join(f"{n} {esc(o)}" for o, n in counts.items())
        body = (
            f'<p class="counts">{len(report.cleanup)} resource(s): {tally}</p><div class="scroll">'
            '<table class="cleanup"><thead><tr><th>Kind</th><th>Resource</th><th>Location</th><th>Outcome</th>'
            f"<th>At</th><th>Detail</th></tr></thead><tbody>{''.join(map(_cleanup_row, report.cleanup))}"
            "</tbody></table></div>"
        )
    return f'<section id="cleanup"><h2>Cleanup</h2>{body}</section>'


def _notes(notes: Iterable[str]) -> str:
    items = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return f'<section id="notes"><h2>Notes</h2><ul class="notes">{items}</ul></section>' if items else ""


def render(report: RunReport) -> str:
    title = f"{report.runbook_name} {report.mode} {report.run_id}: {report.status}"
    return "".join(
        [
            "<!DOCTYPE html>\n",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            # Belt and braces for "self-contained": nothing may be fetched and no script may run.
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            '<meta name="generator" content="drctl">',
            f"<title>{esc(title)}</title><style>{CSS}</style></head>",
            f'<body class="mode-{slug(report.mode)}">',
            _summary(report),
            '<section class="objectives" id="objectives">'
            f"{_objective(report.rto)}{_objective(report.rpo, _rpo_method(report))}</section>",
            _phases(report),
            _timeline_section(report),
            _steps_table(report),
            _cleanup(report),
            _notes(report.notes),
            "<footer>drctl run report · one self-contained file: no scripts, nothing loaded from elsewhere</footer>",
            "</body></html>\n",
        ]
    )
