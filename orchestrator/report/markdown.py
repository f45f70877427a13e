"""A run report as Markdown, for a post-incident write-up or a drill log: a summary table, RTO and RPO against
the objectives, and the steps by tier with their attempts and durations."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from orchestrator.report.model import ObjectiveCheck, RunReport, StepReport

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
        ],
    )
    lines += ["", "## Objectives", ""]
    lines += table(
        ["Objective", "Target", "Measured", "Result", "Detail"], map(_objective_row, (report.rto, report.rpo))
    )
    lines += ["", "## Steps", ""]
    ordered = sorted(report.steps, key=lambda s: (s.tier is None, s.tier or 0))
    lines += table(
        ["Tier", "Step", "Action", "Status", "Attempts", "Duration", "Started", "Finished", "Notes"],
        [
            [
                "?" if s.tier is None else s.tier,
                s.step_id,
                s.action or "?",
                s.status,
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
