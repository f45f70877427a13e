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

import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from orchestrator.report.markdown import duration
from orchestrator.report.model import AttemptReport, CleanupReport, ObjectiveCheck, RunReport, StepReport

# Control characters are invalid in HTML and lone surrogates cannot be written as UTF-8 at all: an error
# message from a shell step may carry either.
_UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")

_VERDICT_WORD = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN"}
_VERDICT_ICON = {"pass": "✓", "fail": "✗", "unknown": "?"}
_STATUS_ICON = {
    "succeeded": "✓",
    "failed": "✗",
    "partially_failed": "!",
    "skipped": "\u2013",
    "interrupted": "‖",
    "running": "▸",
    "pending": "·",
}
# U+00D7 MULTIPLICATION SIGN ("retried x2", a failed attempt's mark), escaped: ruff reads it as a look-alike x.
_TIMES = "\u00d7"
_OUTCOME_CLASS = {"removed": "ok", "already gone": "neutral", "failed": "bad"}


def esc(value: object) -> str:
    """Text safe anywhere in the page, element content or quoted attribute value."""
    text = "" if value is None else str(value)
    return html.escape(_UNWRITABLE.sub("\ufffd", text), quote=True)


def _slug(value: str) -> str:
    """A CSS class fragment from a status word the journal wrote (``partially_failed``, ``already gone``)."""
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-") or "unknown"


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except (ValueError, TypeError):
        return None


def _when(text: str | None) -> str:
    """A journal timestamp for people (``2026-03-01 12:00:00 UTC``), in a ``<time>`` element; the raw text,
    escaped, when it does not parse; an em dash when there is none."""
    if not text:
        return "—"
    moment = _parse(text)
    if moment is None:
        return esc(text)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        shown += f".{moment.microsecond // 1000:03d}"
    if moment.tzinfo is not None:
        offset = moment.utcoffset()
        shown += " UTC" if offset is not None and not offset else moment.strftime(" %z")
    return f'<time datetime="{esc(text)}">{esc(shown)}</time>'


def _num(value: float) -> str:
    """An SVG coordinate: short, and never ``nan`` or ``inf`` (which would make the attribute invalid)."""
    if not math.isfinite(value):
        return "0"
    return f"{value:.1f}".rstrip("0").rstrip(".")


# -- the clock of the timeline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clock:
    """Seconds since the run's start; or, when the run's start does not parse, since the earliest time that
    does, so a damaged journal still gives a timeline (its axis says which origin it uses)."""

    origin: datetime | None
    from_run_start: bool

    @classmethod
    def of(cls, report: RunReport) -> _Clock:
        start = _parse(report.started)
        if start is not None:
            return cls(start, True)
        seen = [
            t
            for s in report.steps
            for t in (_parse(s.started), *(_parse(a.started) for a in s.attempts))
            if t is not None
        ]
        # Naive and aware times cannot be compared: take the earliest of whichever kind is more common.
        aware = [t for t in seen if t.tzinfo is not None]
        naive = [t for t in seen if t.tzinfo is None]
        group = aware if len(aware) >= len(naive) else naive
        return cls(min(group) if group else None, False)

    def at(self, text: str | None) -> float | None:
        moment = _parse(text)
        if moment is None or self.origin is None:
            return None
        try:
            seconds = (moment - self.origin).total_seconds()
        except TypeError:  # one naive, one aware
            return None
        return seconds if math.isfinite(seconds) else None


_NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _tick_step(span: float, most: int = 10) -> float:
    for step in _NICE_STEPS:
        if span / step <= most:
            return float(step)
    return float(math.ceil(span / most / 86400) * 86400)


def _tick_label(seconds: float) -> str:
    """``0``, ``45s``, ``2m``, ``1m30s``, ``1h``, ``1h15m``, ``2d``: as short as the tick allows."""
    if seconds == 0:
        return "0"
    sign = "-" if seconds < 0 else ""
    whole = round(abs(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return sign + "".join(parts[:2])


# -- the timeline -------------------------------------------------------------------------------------------

_WIDTH = 1160
_LABEL_W = 250
_CHART_X0 = _LABEL_W + 14
_CHART_X1 = _WIDTH - 24
_AXIS_H = 52
_TIER_H = 26
_ROW_H = 22
_BAR_H = 14
_FOOT_H = 30
_LABEL_CHARS = 30
_MARK_W = 62
_RETRY_W = 74


@dataclass(frozen=True)
class _Scale:
    t0: float
    t1: float

    def x(self, seconds: float) -> float:
        return _CHART_X0 + (seconds - self.t0) / (self.t1 - self.t0) * (_CHART_X1 - _CHART_X0)


def _tier_name(tier: int | None) -> str:
    return "Tier ?" if tier is None else f"Tier {tier}"


def _by_tier(steps: Sequence[StepReport]) -> list[tuple[int | None, list[StepReport]]]:
    """Steps grouped by tier, tiers ascending and unknown last; runbook order within a tier."""
    groups: dict[int | None, list[StepReport]] = {}
    for step in steps:
        groups.setdefault(step.tier, []).append(step)
    return sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))


def _attempt_class(attempt: AttemptReport) -> str:
    if attempt.status == "succeeded":
        return "ok"
    if attempt.status == "failed":
        return "failed"
    return "open" if attempt.finished is None else "other"


def _attempt_title(attempt: AttemptReport, start: float, end: float | None) -> str:
    status = attempt.status or ("running or cut short" if attempt.finished is None else "ended")
    text = f"attempt {attempt.number} {status}"
    if attempt.error and attempt.error.strip():
        error = attempt.error.strip()
        text += ": " + (error if len(error) <= 600 else error[:600] + "…")
    timing = f"+{duration(start)}" if start >= 0 else f"{duration(start)}"
    if end is not None:
        timing += f" → +{duration(end)} ({duration(end - start)})"
    return f"{text}\n{timing}"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


OBJECTIVE_ZOOM = 4.0


class _Timeline:
    """The SVG, built row by row into one list of strings (joined once)."""

    def __init__(self, report: RunReport) -> None:
        self.report = report
        self.clock = _Clock.of(report)
        self.undrawn = 0
        self.out: list[str] = []
        ends: list[float] = [0.0]
        for step in report.steps:
            for value in (step.started, step.finished, *(t for a in step.attempts for t in (a.started, a.finished))):
                if (seconds := self.clock.at(value)) is not None:
                    ends.append(seconds)
        run_end = self.clock.at(report.finished) if report.finished else None
        self.open_end = run_end if run_end is not None else max(ends)
        for extra in (run_end, report.rto.measured_seconds):
            if extra is not None and math.isfinite(extra):
                ends.append(extra)
        # An objective far beyond the run (a 15-minute RTO for a 2-second drill) would squash every bar into
        # the left edge: past OBJECTIVE_ZOOM times the run's length it is named at the edge, not drawn to scale.
        objective = report.rto.objective_seconds
        self.objective_off_chart = False
        if objective is not None and math.isfinite(objective):
            if objective <= OBJECTIVE_ZOOM * max(max(ends) - min(ends), 1.0):
                ends.append(objective)
            else:
                self.objective_off_chart = True
        low, high = min(ends), max(ends)
        span = max(high - low, 1.0)
        self.step = _tick_step(span)
        # A little headroom on the right so the last bar does not touch the edge.
        self.scale = _Scale(low, high + span * 0.02)

    def render(self) -> str:
        groups = _by_tier(self.report.steps)
        height = _AXIS_H + sum(_TIER_H + len(steps) * _ROW_H for _, steps in groups) + _FOOT_H
        origin = "run start" if self.clock.from_run_start else "the earliest recorded time (run start unreadable)"
        desc = f"Timeline of {len(self.report.steps)} steps by tier; x axis is time since {origin}."
        self.out.append(
            f'<svg id="timeline" class="timeline" width="{_WIDTH}" height="{height}" '
            f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-labelledby="timeline-title timeline-desc">'
            f'<title id="timeline-title">Run timeline</title><desc id="timeline-desc">{esc(desc)}</desc>'
            '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"/>'
            '<rect width="3" height="6" class="hatch-fg"/></pattern></defs>'
        )
        # Painter's order: bands, then the grid, then the bars, then the RTO lines over everything.
        y = _AXIS_H
        for index, (tier, steps) in enumerate(groups):
            band_h = _TIER_H + len(steps) * _ROW_H
            self.out.append(
                f'<rect class="tier-band band-{index % 2}" data-tier="{"" if tier is None else tier}" x="0" y="{y}" '
                f'width="{_WIDTH}" height="{band_h}"/>'
            )
            y += band_h
        self._axis(height)
        y = _AXIS_H
        for tier, steps in groups:
            y = self._tier(tier, steps, y)
        self._markers(height)
        self.out.append("</svg>")
        return "".join(self.out)

    def _axis(self, height: int) -> None:
        bottom = height - _FOOT_H
        first = math.ceil(self.scale.t0 / self.step) * self.step
        ticks = [first + i * self.step for i in range(int((self.scale.t1 - first) / self.step) + 1)]
        parts = ['<g class="axis">']
        for t in ticks:
            x = _num(self.scale.x(t))
            label = esc(_tick_label(t))
            parts.append(
                f'<line class="grid" x1="{x}" y1="{_AXIS_H - 6}" x2="{x}" y2="{bottom}"/>'
                f'<text class="tick" x="{x}" y="{_AXIS_H - 10}">{label}</text>'
                f'<text class="tick" x="{x}" y="{bottom + 18}">{label}</text>'
            )
        origin = "since run start" if self.clock.from_run_start else "since first recorded time"
        parts.append(f'<text class="axis-title" x="{_LABEL_W}" y="{_AXIS_H - 10}">time {origin} →</text>')
        parts.append(f'<line class="axis-line" x1="{_CHART_X0}" y1="{_AXIS_H}" x2="{_CHART_X1}" y2="{_AXIS_H}"/></g>')
        self.out.append("".join(parts))

    def _markers(self, height: int) -> None:
        bottom = height - _FOOT_H
        rto = self.report.rto
        marks: list[tuple[float, str, str]] = []
        if rto.objective_seconds is not None and math.isfinite(rto.objective_seconds) and not self.objective_off_chart:
            marks.append((rto.objective_seconds, "rto-objective", f"RTO objective {duration(rto.objective_seconds)}"))
        if rto.measured_seconds is not None and math.isfinite(rto.measured_seconds):
            word = _VERDICT_WORD[rto.verdict]
            marks.append(
                (
                    rto.measured_seconds,
                    f"rto-measured verdict-{rto.verdict}",
                    f"RTO {duration(rto.measured_seconds)} · {word}",
                )
            )
        if not marks:
            return
        # Two labels point away from each other so they never overlap: the left one ends at its line.
        marks.sort(key=lambda m: m[0])
        for position, (seconds, cls, label) in enumerate(marks):
            x = self.scale.x(seconds)
            leftmost = position == 0 and len(marks) == 2
            anchor = "end" if leftmost else "start"
            room = len(label) * 6.6
            if anchor == "start" and x + room > _WIDTH - 4:
                anchor = "end"
            if anchor == "end" and x - room < 4:
                anchor = "start"
            dx = -5 if anchor == "end" else 5
            self.out.append(
                f'<g class="marker {cls}" data-seconds="{_num(seconds)}">'
                f'<line x1="{_num(x)}" y1="{_AXIS_H - 34}" x2="{_num(x)}" y2="{bottom}"/>'
                f'<text x="{_num(x + dx)}" y="{_AXIS_H - 30}" text-anchor="{anchor}">{esc(label)}</text>'
                f"<title>{esc(label)}</title></g>"
            )

    def _tier(self, tier: int | None, steps: list[StepReport], y: int) -> int:
        name = _tier_name(tier)
        data_tier = "" if tier is None else str(tier)
        count = f"{len(steps)} step" + ("" if len(steps) == 1 else "s")
        self.out.append(
            f'<g class="tier" data-tier="{data_tier}">'
            f'<text class="tier-label" x="12" y="{y + 17}">{esc(name)}'
            f'<tspan class="tier-count" dx="8">{esc(count)}</tspan></text>'
        )
        row_y = y + _TIER_H
        for step in steps:
            self._row(step, data_tier, row_y)
            row_y += _ROW_H
        self.out.append("</g>")
        return row_y

    def _row(self, step: StepReport, data_tier: str, y: int) -> None:
        mid = y + _ROW_H / 2
        bar_y = _num(mid - _BAR_H / 2)
        status = _slug(step.status)
        sid = esc(step.step_id)
        self.out.append(
            f'<g class="row status-{status}" data-step="{sid}" data-tier="{data_tier}">'
            f'<rect class="row-bg" x="0" y="{y}" width="{_WIDTH}" height="{_ROW_H}"/>'
            f'<text class="step-icon status-{status}" x="24" y="{_num(mid + 4)}">'
            f"{esc(_STATUS_ICON.get(step.status, '?'))}</text>"
            f'<text class="step-label" x="40" y="{_num(mid + 4)}">{esc(_truncate(step.step_id, _LABEL_CHARS))}'
            f"<title>{sid} ({esc(step.action or 'action unknown')}): {esc(step.status)}</title></text>"
        )
        bars: list[str] = []
        spans: list[tuple[float, float]] = []
        for attempt in step.attempts:
            start = self.clock.at(attempt.started)
            if start is None:
                self.undrawn += 1
                continue
            end = self.clock.at(attempt.finished) if attempt.finished else None
            # An attempt still open (or cut short by a crash) runs to the run's end, or the last known time.
            end_drawn = max(self.open_end if end is None else end, start)
            x0, x1 = self.scale.x(start), self.scale.x(end_drawn)
            width = max(x1 - x0, 3.0)
            kind = _attempt_class(attempt)
            bars.append(
                f'<rect class="bar {kind}" x="{_num(x0)}" y="{bar_y}" width="{_num(width)}" height="{_BAR_H}" '
                f'rx="2" data-step="{sid}" data-tier="{data_tier}" data-attempt="{attempt.number}" '
                f'data-status="{esc(attempt.status or "")}">'
                f"<title>{esc(_attempt_title(attempt, start, end))}</title></rect>"
            )
            if kind == "failed":
                # On a disc of its own: a hatched bar of a few pixels cannot carry a readable mark.
                cx = _num(x0 + width / 2)
                bars.append(
                    f'<circle class="fail-dot" cx="{cx}" cy="{_num(mid)}" r="6"/>'
                    f'<text class="fail-mark" x="{cx}" y="{_num(mid + 4)}">{_TIMES}</text>'
                )
            spans.append((x0, x0 + width))
        if spans:
            # The line goes first so that the bars are drawn over it.
            self.out.append(self._span_line(step, spans, mid))
            self.out.extend(bars)
            if len(step.attempts) > 1:
                self._note(spans, mid, f"retried {_TIMES}{len(step.attempts) - 1}", "retry-mark", _RETRY_W)
        elif step.status == "skipped" or not step.attempts:
            self._not_run(step, mid)
        self.out.append("</g>")

    def _span_line(self, step: StepReport, spans: list[tuple[float, float]], mid: float) -> str:
        """A thin line from when the step was scheduled to its last attempt's end: shows the wait for a worker
        or an approval before the first attempt and the backoff between attempts."""
        scheduled = self.clock.at(step.started)
        left = min(spans[0][0], self.scale.x(scheduled) if scheduled is not None else spans[0][0])
        right = max(end for _, end in spans)
        if right - left <= 1:
            return ""
        return f'<line class="span-line" x1="{_num(left)}" y1="{_num(mid)}" x2="{_num(right)}" y2="{_num(mid)}"/>'

    def _note(self, spans: list[tuple[float, float]], mid: float, text: str, cls: str, width: float) -> None:
        right = max(end for _, end in spans)
        if right + 8 + width <= _WIDTH - 4:
            x, anchor = right + 8, "start"
        else:
            x, anchor = min(start for start, _ in spans) - 8, "end"
        self.out.append(
            f'<text class="{cls}" x="{_num(x)}" y="{_num(mid + 4)}" text-anchor="{anchor}">{esc(text)}</text>'
        )

    def _not_run(self, step: StepReport, mid: float) -> None:
        """A skipped (or never started) step: an outlined marker where the run decided, with the reason."""
        at = self.clock.at(step.finished) if step.finished else None
        if at is None:
            at = self.clock.at(step.started)
        x = self.scale.x(at) if at is not None else _CHART_X0
        x = min(max(x, _CHART_X0), _CHART_X1 - _MARK_W)
        word = "skipped" if step.status == "skipped" else ("not run" if step.status == "pending" else step.status)
        reason = step.skip_reason or step.error_line
        title = f"{step.step_id} {word}" + (f": {reason}" if reason else "")
        cls = "skip-mark" if step.status == "skipped" else "idle-mark"
        self.out.append(
            f'<g class="{cls}" data-step="{esc(step.step_id)}"><rect x="{_num(x)}" y="{_num(mid - _BAR_H / 2)}" '
            f'width="{_MARK_W}" height="{_BAR_H}" rx="7"/>'
            f'<text x="{_num(x + _MARK_W / 2)}" y="{_num(mid + 4)}">{esc(word)}</text>'
            f"<title>{esc(title)}</title></g>"
        )


# -- the page -----------------------------------------------------------------------------------------------

_CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--bg:#f5f7fa;--card:#fff;--ok:#2f855a;--ok-bg:#e3f4ea;
--bad:#c53030;--bad-bg:#fde8e8;--warn:#b7791f;--warn-bg:#fdf3dc;--unk:#52606d;--unk-bg:#e4e7eb;--info:#2b6cb0;
--info-bg:#e3eefa;--bar-ok:#3c9d6d;--bar-open:#4c7bd9;--drill:#6b46c1;--drill-bg:#efe9fb}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0 auto;padding:28px 32px 40px;color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif;max-width:1280px}
code,.mono,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
h1{font-size:24px;margin:0;line-height:1.25;overflow-wrap:anywhere}
h2{font-size:16px;margin:0 0 12px;letter-spacing:.01em}
section,header.summary{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;
margin:0 0 18px;box-shadow:0 1px 2px rgba(31,41,51,.05)}
.title-row{display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.badge{display:inline-block;font-weight:700;font-size:11.5px;letter-spacing:.08em;padding:3px 9px;border-radius:999px;
border:1px solid transparent;white-space:nowrap}
.badge.mode-drill{background:var(--drill-bg);color:var(--drill);border-color:#d6c8f5}
.badge.mode-failover{background:var(--bad-bg);color:var(--bad);border-color:#f5c2c2}
.pill{display:inline-block;font-weight:600;font-size:12px;padding:2px 9px;border-radius:999px;white-space:nowrap}
.s-succeeded,.o-ok,.v-pass{background:var(--ok-bg);color:var(--ok)}
.s-failed,.o-bad,.v-fail{background:var(--bad-bg);color:var(--bad)}
.s-partially-failed,.s-interrupted{background:var(--warn-bg);color:var(--warn)}
.s-running{background:var(--info-bg);color:var(--info)}
.s-skipped,.s-pending,.o-neutral,.v-unknown,.s-unknown{background:var(--unk-bg);color:var(--unk)}
.sub{color:var(--muted);margin:6px 0 14px}
dl.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:10px 22px;margin:0}
dl.facts div{min-width:0}
dt{color:var(--muted);font-size:11.5px;text-transform:uppercase;letter-spacing:.06em}
dd{margin:2px 0 0;font-weight:600;overflow-wrap:anywhere}
.params{margin-top:14px;display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.params .k{color:var(--muted);font-size:12px;margin-right:4px}
.param{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:1px 7px;word-break:break-all}
.objectives{display:grid;grid-template-columns:1fr 1fr;gap:18px;background:none;border:0;padding:0;box-shadow:none}
.objective{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--unk);border-radius:10px;
padding:16px 20px}
.objective.verdict-pass{border-left-color:var(--ok)}
.objective.verdict-fail{border-left-color:var(--bad)}
.objective header{display:flex;justify-content:space-between;align-items:center;gap:10px}
.objective h2{margin:0}
.objective h2 small{color:var(--muted);font-weight:400;font-size:12.5px;margin-left:6px}
.verdict{font-weight:800;font-size:13px;letter-spacing:.06em;padding:3px 11px;border-radius:6px}
.figures{display:flex;gap:34px;margin:12px 0 8px}
.figures .label{display:block;color:var(--muted);font-size:11.5px;text-transform:uppercase;letter-spacing:.06em}
.figures .value{font-size:22px;font-weight:700;font-variant-numeric:tabular-nums}
.gauge{position:relative;height:8px;background:var(--unk-bg);border-radius:4px;margin:6px 0 10px}
.gauge .fill{position:absolute;left:0;top:0;bottom:0;border-radius:4px;background:var(--ok)}
.verdict-fail .gauge .fill{background:var(--bad)}
.verdict-unknown .gauge .fill{background:var(--unk)}
.gauge .target{position:absolute;top:-4px;bottom:-4px;width:2px;background:var(--ink)}
.detail{margin:0;color:var(--muted);font-size:13px;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;color:var(--muted);font-size:12.5px;margin:10px 0 0}
.legend span{display:inline-flex;align-items:center;gap:6px}
.sw{display:inline-block;width:22px;height:11px;border-radius:2px}
.sw.ok{background:var(--bar-ok)}
.sw.failed{background:repeating-linear-gradient(45deg,#e05252 0 3px,#fbd5d5 3px 6px);border:1px solid var(--bad)}
.sw.open{background:var(--bar-open)}
.sw.skip{border:1.5px dashed #9aa5b1;border-radius:6px}
.sw.obj{width:0;height:14px;border-left:2px dashed var(--ink);border-radius:0}
.sw.meas{width:0;height:14px;border-left:2px solid var(--ok);border-radius:0}
.sw.meas.fail{border-left-color:var(--bad)}
.sw.meas.unknown{border-left-color:var(--unk)}
.caveat{color:var(--warn);font-size:12.5px;margin:8px 0 0}
svg.timeline{display:block;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;font-size:12px}
svg .band-0{fill:#f8fafc}
svg .band-1{fill:#eef2f7}
svg .tier-label{font-weight:700;font-size:12.5px;fill:var(--ink)}
svg .tier-count{font-weight:400;fill:var(--muted)}
svg .step-label{fill:var(--ink);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:11.5px}
svg .step-icon{font-weight:700;font-size:12px;text-anchor:middle;fill:var(--unk)}
svg .step-icon.status-succeeded{fill:var(--ok)}
svg .step-icon.status-failed{fill:var(--bad)}
svg .grid{stroke:#d5dde6;stroke-width:1}
svg .axis-line{stroke:#9aa5b1}
svg .tick{fill:var(--muted);font-size:11px;text-anchor:middle;font-variant-numeric:tabular-nums}
svg .axis-title{fill:var(--muted);font-size:11px;text-anchor:end}
svg .bar{stroke-width:1;shape-rendering:crispEdges}
svg .bar.ok{fill:var(--bar-ok);stroke:#2c7a54}
svg .bar.failed{fill:url(#hatch);stroke:var(--bad)}
svg .bar.open{fill:var(--bar-open);stroke:#2f5fb3;fill-opacity:.75}
svg .bar.other{fill:#d69e2e;stroke:#b7791f}
svg .hatch-bg{fill:#fbd5d5}
svg .hatch-fg{fill:#e05252}
svg .fail-dot{fill:#fff;stroke:var(--bad);stroke-width:1.2;pointer-events:none}
svg .fail-mark{fill:var(--bad);font-weight:800;font-size:12px;text-anchor:middle;pointer-events:none}
svg .row-bg{fill:transparent}
svg .row:hover .row-bg{fill:rgba(43,108,176,.08)}
svg .row:hover .step-label{font-weight:700}
svg .retry-mark{fill:#9c4221;font-size:11px;font-weight:600}
svg .span-line{stroke:#9aa5b1;stroke-width:1;stroke-dasharray:2 2}
svg .skip-mark rect,svg .idle-mark rect{fill:#fff;stroke:#9aa5b1;stroke-width:1.2;stroke-dasharray:4 3}
svg .skip-mark text,svg .idle-mark text{fill:var(--unk);font-size:10.5px;text-anchor:middle;font-style:italic}
svg .marker line{stroke-width:2}
svg .marker text{font-size:11px;font-weight:700}
svg .rto-objective line{stroke:var(--ink);stroke-dasharray:6 4}
svg .rto-objective text{fill:var(--ink)}
svg .rto-measured line{stroke:var(--unk)}
svg .rto-measured text{fill:var(--unk)}
svg .rto-measured.verdict-pass line{stroke:var(--ok)}
svg .rto-measured.verdict-pass text{fill:var(--ok)}
svg .rto-measured.verdict-fail line{stroke:var(--bad)}
svg .rto-measured.verdict-fail text{fill:var(--bad)}
table{border-collapse:collapse;width:100%;font-size:13px}
table.steps{table-layout:fixed;min-width:980px}
th{text-align:left;color:var(--muted);font-weight:600;font-size:11.5px;text-transform:uppercase;letter-spacing:.05em;
border-bottom:2px solid var(--line);padding:6px 10px;white-space:nowrap}
td{border-bottom:1px solid var(--line);padding:7px 10px;vertical-align:top;overflow-wrap:anywhere}
tbody tr:nth-child(even){background:#fafbfc}
tr.tier-row td{background:var(--bg);font-weight:700;font-size:12px;color:var(--muted);letter-spacing:.04em;
padding:5px 10px}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.err{color:var(--bad)}
.why{color:var(--muted);font-style:italic}
.att{display:block;color:var(--muted);font-size:12px}
details summary{cursor:pointer}
details pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--bg);border:1px solid var(--line);
border-radius:6px;padding:8px;margin:6px 0 0;max-height:260px;overflow:auto}
.empty{color:var(--muted);font-style:italic;margin:0}
.counts{color:var(--muted);margin:0 0 10px}
ul.notes{margin:0;padding-left:20px}
ul.notes li{margin:3px 0;overflow-wrap:anywhere}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:8px}
@media (max-width:900px){.objectives{grid-template-columns:1fr}body{padding:16px}}
@media print{html{background:#fff}section,header.summary,.objective{box-shadow:none;break-inside:avoid-page}
.scroll{overflow:visible}}
"""


def _pill(word: str, cls: str) -> str:
    return f'<span class="pill {cls}">{esc(_STATUS_ICON.get(word, ""))} {esc(word.replace("_", " "))}</span>'


def _status_pill(status: str) -> str:
    return _pill(status, f"s-{_slug(status)}")


def _summary(report: RunReport) -> str:
    drill = report.mode == "drill"
    badge = (
        '<span class="badge mode-drill" title="a rehearsal: nothing was failed over">DRILL</span>'
        if drill
        else f'<span class="badge mode-{_slug(report.mode)}">{esc(report.mode.upper())}</span>'
    )
    counts: dict[str, int] = {}
    for step in report.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    tally = " · ".join(f"{n} {esc(s.replace('_', ' '))}" for s, n in sorted(counts.items())) or "none"
    facts = [
        ("Mode", esc(report.mode)),
        ("Started", _when(report.started)),
        ("Finished", _when(report.finished) if report.finished else "— (not finished)"),
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


def _objective(check: ObjectiveCheck) -> str:
    long_name = "recovery time" if check.name == "rto" else "recovery point"
    verdict = check.verdict if check.verdict in _VERDICT_WORD else "unknown"
    measured = duration(check.measured_seconds) if check.measured_seconds is not None else "not measured"
    objective = duration(check.objective_seconds) if check.objective_seconds is not None else "not set"
    gauge = ""
    m, o = check.measured_seconds, check.objective_seconds
    if m is not None and o is not None and math.isfinite(m) and math.isfinite(o) and max(m, o) > 0:
        top = max(m, o) * 1.08
        gauge = (
            f'<div class="gauge" aria-hidden="true"><div class="fill" style="width:{_num(max(m, 0) / top * 100)}%">'
            f'</div><div class="target" style="left:{_num(o / top * 100)}%"></div></div>'
        )
    return (
        f'<article class="objective verdict-{verdict}" id="{check.name}" data-verdict="{verdict}">'
        f"<header><h2>{check.name.upper()}<small>{long_name}</small></h2>"
        f'<span class="verdict v-{verdict}">{_VERDICT_ICON[verdict]} {_VERDICT_WORD[verdict]}</span></header>'
        '<div class="figures">'
        f'<div><span class="label">Measured</span><span class="value measured">{esc(measured)}</span></div>'
        f'<div><span class="label">Objective</span><span class="value target">{esc(objective)}</span></div>'
        f'</div>{gauge}<p class="detail">{esc(check.detail)}</p></article>'
    )


def _legend(report: RunReport) -> str:
    items = [
        '<span><i class="sw ok"></i>attempt succeeded</span>',
        f'<span><i class="sw failed"></i>attempt failed ({_TIMES})</span>',
        '<span><i class="sw open"></i>attempt unfinished</span>',
        '<span><i class="sw skip"></i>step skipped / not run</span>',
    ]
    if report.rto.objective_seconds is not None:
        items.append('<span><i class="sw obj"></i>RTO objective</span>')
    if report.rto.measured_seconds is not None:
        items.append(f'<span><i class="sw meas {report.rto.verdict}"></i>measured RTO</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def _timeline_section(report: RunReport) -> str:
    timeline = _Timeline(report)
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
        lines.append(f' <span class="retry">(retried {_TIMES}{len(step.attempts) - 1})</span>')
    for a in failed:
        why = (a.error or "").strip().splitlines()
        lines.append(f'<span class="att">#{a.number} failed{": " + esc(_truncate(why[0], 160)) if why else ""}</span>')
    return "".join(lines)


def _steps_table(report: RunReport) -> str:
    rows: list[str] = []
    for tier, steps in _by_tier(report.steps):
        rows.append(f'<tr class="tier-row"><td colspan="8">{esc(_tier_name(tier))}</td></tr>')
        for s in steps:
            rows.append(
                f'<tr class="step status-{_slug(s.status)}" data-step="{esc(s.step_id)}">'
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
    cls = _OUTCOME_CLASS.get(c.outcome, "neutral")
    return (
        f'<tr class="cleanup outcome-{_slug(c.outcome)}"><td>{esc(c.kind)}</td>'
        f'<td class="mono">{esc(c.resource_id)}</td>'
        f'<td class="mono">{esc(c.location)}</td><td><span class="pill o-{cls}">{esc(c.outcome)}</span></td>'
        f"<td>{_when(c.at)}</td><td>{esc(c.detail) if c.detail else '—'}</td></tr>"
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
            f"<title>{esc(title)}</title><style>{_CSS}</style></head>",
            f'<body class="mode-{_slug(report.mode)}">',
            _summary(report),
            f'<section class="objectives" id="objectives">{_objective(report.rto)}{_objective(report.rpo)}</section>',
            _timeline_section(report),
            _steps_table(report),
            _cleanup(report),
            _notes(report.notes),
            "<footer>drctl run report · one self-contained file: no scripts, nothing loaded from elsewhere</footer>",
            "</body></html>\n",
        ]
    )
