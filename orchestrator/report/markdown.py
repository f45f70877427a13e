"""A run report as Markdown, for a post-incident write-up or a drill log: a summary table, RTO and RPO against
the objectives, and the steps by tier with their attempts and durations."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from orchestrator.report.findings import findings
from orchestrator.report.model import ObjectiveCheck, RunReport, StepReport
from orchestrator.report.phases import PhaseBreakdown

VERDICT_WORD = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN"}


def duration(seconds: float | None) -> str:
    """``1h02m03s``, ``4m05s``, ``12.3s``; an em dash when unknown."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\["})
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


def cell(value: object) -> str:
    """Text safe in a table cell: one line, no control characters, HTML and Markdown syntax escaped, so an
    error message can neither break the table nor render as markup."""
    text = " ".join(_CONTROL.sub("", "" if value is None else str(value)).split())
    for raw, entity in _ENTITIES:
        text = text.replace(raw, entity)
    return text.translate(_ESCAPES) or " "


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _objective_row(check: ObjectiveCheck) -> list[object]:
    return [
        check.name.upper(),
        duration(check.objective_seconds) if check.objective_seconds is not None else "not set",
        duration(check.measured_seconds),
        VERDICT_WORD[check.verdict],
        check.detail,
    ]


RPO_METHOD_TEXT = {"data": "data (newest restored row)", "recovery point age": "recovery point age"}


def share(value: float | None) -> str:
    """A share of the RTO as a whole percent; an em dash when there is none."""
    return "—" if value is None else f"{value * 100:.0f}%"


def rpo_method(report: RunReport) -> str:
    """How RPO was measured, in words: ``data (newest restored row)``, ``recovery point age`` or ``unknown``."""
    return RPO_METHOD_TEXT.get(report.rpo_method or "", "unknown")


def disaster_instant(report: RunReport) -> str:
    """``2026-...+00:00 (run start)`` or ``2026-...+00:00 (--disaster-at)``."""
    return f"{report.disaster_at or report.started} ({report.disaster_at_source})"


def phases_line(phases: PhaseBreakdown | None) -> str:
    """``restore 2m00s (33%) · boot 3m00s (50%)``: each phase's time and share of the RTO, in one line."""
    if phases is None or not phases.phases:
        return "no step ran" if phases is not None else "unknown (step actions are unknown)"
    parts = []
    for p in phases.phases:
        part = f"{p.phase} {duration(p.seconds)}"
        parts.append(part + (f" ({share(p.share_of_rto)})" if p.share_of_rto is not None else ""))
    return " · ".join(parts)


def step_list(steps: Sequence[str], limit: int = 6) -> str:
    """``a, b, c`` or, past ``limit``, ``a, b, ... (+12 more)``: a phase of a 200-step run stays one short cell."""
    more = f", ... (+{len(steps) - limit} more)" if len(steps) > limit else ""
    return ", ".join(steps[:limit]) + more


def _phases(report: RunReport) -> list[str]:
    phases = report.rto_phases
    title = "## RTO by phase" if phases is None or phases.window == "rto" else "## Run by phase (no RTO measured)"
    lines = ["", title, ""]
    if phases is None:
        return [*lines, "Step actions are unknown (see notes): the time cannot be split into phases."]
    span = "the RTO" if phases.window == "rto" else "the run"
    lines.append(f"From {cell(phases.start)} to {cell(phases.end)} ({span}, {duration(phases.seconds)}).")
    lines.append("")
    lines += table(
        ["Phase", "Time", "Share of RTO", "Steps"],
        [[p.phase, duration(p.seconds), share(p.share_of_rto), step_list(p.steps)] for p in phases.phases],
    )
    lines += ["", f"No step running: {duration(phases.idle_seconds)}. Note: {cell(phases.note)}."]
    return lines


def _attempts(step: StepReport) -> str:
    parts = []
    for a in step.attempts:
        error = f": {a.error.strip().splitlines()[0]}" if a.error and a.error.strip() else ""
        parts.append(f"#{a.number} {a.status or 'running'}{error}")
    return "; ".join(parts) or "—"


def render(report: RunReport) -> str:
    lines = [f"# drctl run {cell(report.run_id)}", ""]
    lines += table(
        ["Field", "Value"],
        [
            ["Runbook", f"{report.runbook_name} ({report.runbook_path})"],
            ["Mode", report.mode],
            ["Status", report.status],
            ["Started", report.started],
            ["Finished", report.finished or "—"],
            ["Duration", duration(report.duration_seconds)],
            ["Parameters", ", ".join(f"{k}={v}" for k, v in sorted(report.params.items())) or "—"],
            ["Disaster instant", disaster_instant(report)],
        ],
    )
    lines += ["", "## Objectives", ""]
    lines += table(
        ["Objective", "Target", "Measured", "Result", "Detail"], map(_objective_row, (report.rto, report.rpo))
    )
    lines += ["", f"RPO method: {rpo_method(report)}; disaster instant: {cell(disaster_instant(report))}."]
    lines += _phases(report)
    found = findings(report.steps)
    if found:
        lines += ["", "## What the recovery found", ""]
        lines += table(["Step", "Action", "Found"], [[f.step_id, f.action, f.text] for f in found])
    lines += ["", "## Steps", ""]
    lines += [
        "Verified: `lab`, exercised on the emulators by drctl's suite; `unit`, only against fakes (no emulator "
        "exists); `unverified`, neither.",
        "",
    ]
    ordered = sorted(report.steps, key=lambda s: (s.tier is None, s.tier or 0))
    lines += table(
        ["Tier", "Step", "Action", "Status", "Verified", "Attempts", "Duration", "Started", "Finished", "Notes"],
        [
            [
                "?" if s.tier is None else s.tier,
                s.step_id,
                s.action or "?",
                s.status,
                s.verified,
                _attempts(s),
                duration(s.duration_seconds),
                s.started or "—",
                s.finished or "—",
                "; ".join(x for x in (s.approval, s.error_line, s.skip_reason) if x) or " ",
            ]
            for s in ordered
        ],
    )
    if report.mode == "drill":
        lines += ["", "## Cleanup", ""]
        if report.cleanup:
            lines += table(
                ["Kind", "Resource", "Location", "Outcome", "When", "Note"],
                [[c.kind, c.resource_id, c.location, c.outcome, c.at or "—", c.detail or " "] for c in report.cleanup],
            )
        else:
            lines.append("The drill made nothing that needed removing.")
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {cell(n)}" for n in report.notes]
    return "\n".join(lines) + "\n"
