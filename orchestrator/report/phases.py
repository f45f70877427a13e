"""Where a recovery's time went: each step belongs to a *phase* of the recovery, derived from its action, and a
phase's time is the wall-clock time during which at least one of its steps was running (the union of their
intervals, clipped to the window), so steps running in parallel are not counted twice.

``PHASE_OF_ACTION`` is the one place that says which action belongs to which phase; every action not named
there (``shell``, ``wait``, ``notify``, a test's fake...) is ``other``. Phases may overlap each other (a health
check running while a copy still runs), so their shares of the RTO need not add up to 100%.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

PHASES = ("copy", "verify", "restore", "boot", "health", "dns", "other")
"""Every phase, in the order a recovery usually goes through them (and the reports list them)."""

PHASE_OF_ACTION: Mapping[str, str] = {
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

OVERLAP_NOTE = "phases may overlap (steps of different phases can run at once), so the shares need not add up to 100%"

Window = Literal["rto", "run"]
"""What a breakdown's window ends at: the RTO's end, or (no RTO was measured) the run's end."""


def phase_of(action: str | None) -> str:
    """The phase of a step running ``action``; ``other`` for any action not in ``PHASE_OF_ACTION``."""
    return PHASE_OF_ACTION.get(action or "", "other")


@dataclass(frozen=True)
class PhaseReport:
    phase: str
    seconds: float
    """Wall-clock time within the window during which at least one step of the phase was running."""
    share_of_rto: float | None
    """``seconds`` over the RTO, 0 to 1; None when no RTO was measured (the window is then the run's)."""
    steps: tuple[str, ...]
    """The ids of the phase's steps that ran, whether or not they fell inside the window."""


@dataclass(frozen=True)
class PhaseBreakdown:
    window: Window
    start: str
    end: str
    seconds: float
    phases: tuple[PhaseReport, ...]
    """Only the phases with a step that ran, in ``PHASES`` order."""
    idle_seconds: float
    """Time within the window during which no step at all was running (approvals, scheduling, waits between
    tiers)."""
    note: str

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PhaseBreakdown:
        phases = tuple(PhaseReport(**{**p, "steps": tuple(p["steps"])}) for p in doc["phases"])
        return cls(**{**doc, "phases": phases})


@dataclass(frozen=True)
class Interval:
    """One step's time running: from its first attempt's start to its end (None: still running, or it was
    never recorded as ended; counted up to the window's end)."""

    step_id: str
    action: str | None
    start: datetime
    end: datetime | None


def union_seconds(intervals: Iterable[tuple[datetime, datetime]], start: datetime, end: datetime) -> float:
    """The time covered by at least one of ``intervals``, counting only what lies between ``start`` and
    ``end``."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals)
    total = 0.0
    current: tuple[datetime, datetime] | None = None
    for a, b in clipped:
        if b <= a:
            continue
        if current is not None and a <= current[1]:
            current = (current[0], max(current[1], b))
            continue
        if current is not None:
            total += (current[1] - current[0]).total_seconds()
        current = (a, b)
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total


def breakdown(intervals: Iterable[Interval], start: datetime, end: datetime, window: Window) -> PhaseBreakdown:
    """The phases of ``intervals`` within ``start`` to ``end``; shares of the window only when it is the RTO's."""
    spans = [(i, i.end or end) for i in intervals]
    seconds = max((end - start).total_seconds(), 0.0)
    by_phase: dict[str, list[tuple[Interval, datetime]]] = {}
    for interval, stop in spans:
        by_phase.setdefault(phase_of(interval.action), []).append((interval, stop))
    phases: list[PhaseReport] = []
    for phase in PHASES:
        members = by_phase.get(phase)
        if not members:
            continue
        time = union_seconds(((i.start, stop) for i, stop in members), start, end)
        share = time / seconds if window == "rto" and seconds > 0 else None
        phases.append(PhaseReport(phase, time, share, tuple(i.step_id for i, _ in members)))
    busy = union_seconds(((i.start, stop) for i, stop in spans), start, end)
    note = OVERLAP_NOTE
    if window == "run":
        note = (
            "no RTO was measured (the recovery did not complete, or its end is unknown): the phases cover the run "
            "from its start to its end, with no share of an RTO; " + OVERLAP_NOTE
        )
    return PhaseBreakdown(
        window, start.isoformat(), end.isoformat(), seconds, tuple(phases), max(seconds - busy, 0.0), note
    )
