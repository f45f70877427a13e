"""The HTML report's timeline: one inline SVG, a Gantt-style row per step grouped in tier bands, a bar per
attempt (failed ones hatched and marked), retries labelled, and the RTO objective and measurement as lines.
Built in one pass over the steps, so its cost is linear in steps and attempts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from orchestrator.report.html_text import STATUS_ICON, TIMES, esc, num, slug, truncate
from orchestrator.report.markdown import VERDICT_WORD, duration
from orchestrator.report.model import AttemptReport, RunReport, StepReport, parse_time

# -- the clock of the timeline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clock:
    """Seconds since the run's start; or, when the run's start does not parse, since the earliest time that
    does, so a damaged journal still gives a timeline (its axis says which origin it uses)."""

    origin: datetime | None
    from_run_start: bool

    @classmethod
    def of(cls, report: RunReport) -> _Clock:
        start = parse_time(report.started)
        if start is not None:
            return cls(start, True)
        seen = [
            t
            for s in report.steps
            for t in (parse_time(s.started), *(parse_time(a.started) for a in s.attempts))
            if t is not None
        ]
        # Naive and aware times cannot be compared: take the earliest of whichever kind is more common.
        aware = [t for t in seen if t.tzinfo is not None]
        naive = [t for t in seen if t.tzinfo is None]
        group = aware if len(aware) >= len(naive) else naive
        return cls(min(group) if group else None, False)

    def at(self, text: str | None) -> float | None:
        moment = parse_time(text)
        if moment is None or self.origin is None:
            return None
        try:
            seconds = (moment - self.origin).total_seconds()
        except TypeError:  # one naive, one aware
            return None
        return seconds if math.isfinite(seconds) else None


_NICE_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _tick_step(span: float, most: int = 10) -> float:
    for step in _NICE_STEPS:
        if span / step <= most:
            return float(step)
    # Past a day: whole days.
    return float(math.ceil(span / most / 86400) * 86400)


def _tick_label(seconds: float) -> str:
    """``0``, ``45s``, ``2m``, ``1m30s``, ``1h``, ``1h15m``, ``2d``: as short as the tick allows."""
    if seconds == 0:
        return "0"
    if abs(seconds) < 1:  # a sub-second run (a drill on an emulator) gets tenths, not a row of "0s"
        return f"{seconds:.1f}s"
    if abs(seconds) < 10 and round(seconds, 1) != round(seconds):
        return f"{seconds:.1f}s"
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
AXIS_H = 52
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


def tier_name(tier: int | None) -> str:
    return "Tier ?" if tier is None else f"Tier {tier}"


def by_tier(steps: Sequence[StepReport]) -> list[tuple[int | None, list[StepReport]]]:
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


OBJECTIVE_ZOOM = 4.0


class Timeline:
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
        groups = by_tier(self.report.steps)
        height = AXIS_H + sum(_TIER_H + len(steps) * _ROW_H for _, steps in groups) + _FOOT_H
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
        y = AXIS_H
        for index, (tier, steps) in enumerate(groups):
            band_h = _TIER_H + len(steps) * _ROW_H
            self.out.append(
                f'<rect class="tier-band band-{index % 2}" data-tier="{"" if tier is None else tier}" x="0" y="{y}" '
                f'width="{_WIDTH}" height="{band_h}"/>'
            )
            y += band_h
        self._axis(height)
        y = AXIS_H
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
            x = num(self.scale.x(t))
            label = esc(_tick_label(t))
            parts.append(
                f'<line class="grid" x1="{x}" y1="{AXIS_H - 6}" x2="{x}" y2="{bottom}"/>'
                f'<text class="tick" x="{x}" y="{AXIS_H - 10}">{label}</text>'
                f'<text class="tick" x="{x}" y="{bottom + 18}">{label}</text>'
            )
        origin = "since run start" if self.clock.from_run_start else "since first recorded time"
        parts.append(f'<text class="axis-title" x="{_LABEL_W}" y="{AXIS_H - 10}">time {origin} →</text>')
        parts.append(f'<line class="axis-line" x1="{_CHART_X0}" y1="{AXIS_H}" x2="{_CHART_X1}" y2="{AXIS_H}"/></g>')
        self.out.append("".join(parts))

    def _markers(self, height: int) -> None:
        bottom = height - _FOOT_H
        rto = self.report.rto
        marks: list[tuple[float, str, str]] = []
        if rto.objective_seconds is not None and math.isfinite(rto.objective_seconds) and not self.objective_off_chart:
            marks.append((rto.objective_seconds, "rto-objective", f"RTO objective {duration(rto.objective_seconds)}"))
        if rto.measured_seconds is not None and math.isfinite(rto.measured_seconds):
            word = VERDICT_WORD[rto.verdict]
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
                f'<g class="marker {cls}" data-seconds="{num(seconds)}">'
                f'<line x1="{num(x)}" y1="{AXIS_H - 34}" x2="{num(x)}" y2="{bottom}"/>'
                f'<text x="{num(x + dx)}" y="{AXIS_H - 30}" text-anchor="{anchor}">{esc(label)}</text>'
                f"<title>{esc(label)}</title></g>"
            )

    def _tier(self, tier: int | None, steps: list[StepReport], y: int) -> int:
        name = tier_name(tier)
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
        bar_y = num(mid - _BAR_H / 2)
        status = slug(step.status)
        sid = esc(step.step_id)
        self.out.append(
            f'<g class="row status-{status}" data-step="{sid}" data-tier="{data_tier}">'
            f'<rect class="row-bg" x="0" y="{y}" width="{_WIDTH}" height="{_ROW_H}"/>'
            f'<text class="step-icon status-{status}" x="24" y="{num(mid + 4)}">'
            f"{esc(STATUS_ICON.get(step.status, '?'))}</text>"
            f'<text class="step-label" x="40" y="{num(mid + 4)}">{esc(truncate(step.step_id, _LABEL_CHARS))}'
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
                f'<rect class="bar {kind}" x="{num(x0)}" y="{bar_y}" width="{num(width)}" height="{_BAR_H}" '
                f'rx="2" data-step="{sid}" data-tier="{data_tier}" data-attempt="{attempt.number}" '
                f'data-status="{esc(attempt.status or "")}">'
                f"<title>{esc(_attempt_title(attempt, start, end))}</title></rect>"
            )
            if kind == "failed":
                # On a disc of its own: a hatched bar of a few pixels cannot carry a readable mark.
                cx = num(x0 + width / 2)
                bars.append(
                    f'<circle class="fail-dot" cx="{cx}" cy="{num(mid)}" r="6"/>'
                    f'<text class="fail-mark" x="{cx}" y="{num(mid + 4)}">{TIMES}</text>'
                )
            spans.append((x0, x0 + width))
        if spans:
            # The line goes first so that the bars are drawn over it.
            self.out.append(self._span_line(step, spans, mid))
            self.out.extend(bars)
            if len(step.attempts) > 1:
                self._note(spans, mid, f"retried {TIMES}{len(step.attempts) - 1}", "retry-mark", _RETRY_W)
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
        return f'<line class="span-line" x1="{num(left)}" y1="{num(mid)}" x2="{num(right)}" y2="{num(mid)}"/>'

    def _note(self, spans: list[tuple[float, float]], mid: float, text: str, cls: str, width: float) -> None:
        right = max(end for _, end in spans)
        if right + 8 + width <= _WIDTH - 4:
            x, anchor = right + 8, "start"
        else:
            x, anchor = min(start for start, _ in spans) - 8, "end"
        self.out.append(
            f'<text class="{cls}" x="{num(x)}" y="{num(mid + 4)}" text-anchor="{anchor}">{esc(text)}</text>'
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
            f'<g class="{cls}" data-step="{esc(step.step_id)}"><rect x="{num(x)}" y="{num(mid - _BAR_H / 2)}" '
            f'width="{_MARK_W}" height="{_BAR_H}" rx="7"/>'
            f'<text x="{num(x + _MARK_W / 2)}" y="{num(mid + 4)}">{esc(word)}</text>'
            f"<title>{esc(title)}</title></g>"
        )
