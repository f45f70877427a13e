"""How often ``drctl protect`` takes a point, derived from the RPO objective and what it measures.

A change waits for the next point to start, then for that point's copy to finish, so the worst lag is about
``wait + copy``. The schedule keeps that under the objective with room to spare:

- ``budget`` is 80% of the RPO (the rest absorbs a slow listing or a retried request);
- a copy is counted at 1.5 times its measured length (copies vary with the change rate);
- what is left is the wait: between listings (polling), or after the first event before a point starts
  (events; waiting a little gathers a burst of changes into one point rather than one point per object).

If nothing is left, the objective cannot be met at the measured speed, and the service says so at start,
in ``--plan``, in its log and in the ``drctl_protect_objective_feasible`` metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIN_RPO_S = 10.0
"""Below this no promise is honest: a point costs a listing of the source, a manifest and a seal."""
BUDGET_SHARE = 0.8
COPY_FACTOR = 1.5
MIN_POLL_S = 5.0
"""Listing a source more often than this costs requests (and money) without improving the lag much."""
MIN_COALESCE_S = 1.0
MAX_COALESCE_S = 60.0
DEFAULT_RECONCILE_S = 600.0
"""In event mode, a full listing this often catches events that were lost (queue purged, notification off)."""
FIRST_COPY_GUESS_S = 5.0
"""The copy estimate before anything was measured (no earlier point of this source in the set)."""


@dataclass(frozen=True)
class Schedule:
    rpo_s: float
    event_driven: bool
    copy_s: float
    """The copy length the schedule assumes (measured, or the first guess)."""
    measured: bool
    estimated_from: str | None
    wait_s: float
    """Polling: seconds between listings. Events: seconds after the first pending event before a point."""
    reconcile_s: float
    """Seconds between full listings in event mode (in polling mode every point is one)."""
    feasible: bool
    why: str

    @property
    def worst_lag_s(self) -> float:
        return self.wait_s + self.copy_s * COPY_FACTOR

    def describe(self) -> list[str]:
        """The schedule and its reasons, one line each, as ``--plan`` prints them."""
        source = (
            "measured from recent points"
            if self.measured
            else f"estimated from {self.estimated_from}"
            if self.estimated_from
            else "a first guess (no point of this source yet)"
        )
        lines = [
            f"objective: RPO {self.rpo_s:g}s; budget {self.rpo_s * BUDGET_SHARE:g}s (80%, the rest is margin)",
            f"copy: about {self.copy_s:.1f}s per point, {source}; counted as {self.copy_s * COPY_FACTOR:.1f}s",
        ]
        if self.event_driven:
            lines += [
                f"changes: S3 events through SQS; a point starts {self.wait_s:.1f}s after the first pending event",
                f"reconciliation: a full listing every {self.reconcile_s:g}s catches lost events",
            ]
        else:
            lines.append(f"changes: a listing with a content diff every {self.wait_s:.1f}s")
        lines.append(f"worst expected lag: {self.worst_lag_s:.1f}s")
        lines.append(("feasible: " if self.feasible else "NOT feasible: ") + self.why)
        return lines


def derive(
    rpo_s: float,
    event_driven: bool,
    copy_s: float | None,
    reconcile_s: float | None = None,
    estimated_from: str | None = None,
) -> Schedule:
    """The schedule for an objective of ``rpo_s`` seconds when a copy takes ``copy_s`` (None: not measured).
    ``estimated_from`` says where a ``copy_s`` that no point measured came from (a dry listing)."""
    measured = copy_s is not None and estimated_from is None
    copy = copy_s if copy_s is not None else FIRST_COPY_GUESS_S
    reconcile = reconcile_s if reconcile_s is not None else max(DEFAULT_RECONCILE_S, rpo_s)
    floor = MIN_COALESCE_S if event_driven else MIN_POLL_S
    left = rpo_s * BUDGET_SHARE - copy * COPY_FACTOR
    if rpo_s < MIN_RPO_S:
        return Schedule(
            rpo_s, event_driven, copy, measured, estimated_from, floor, reconcile, False,
            f"an RPO under {MIN_RPO_S:g}s cannot be promised (a point costs a listing, a manifest and a seal); "
            f"give --rpo {MIN_RPO_S:g}s or more",
        )  # fmt: skip
    if left < floor:
        needed = (floor + copy * COPY_FACTOR) / BUDGET_SHARE
        return Schedule(
            rpo_s, event_driven, copy, measured, estimated_from, floor, reconcile, False,
            f"a copy takes about {copy:.1f}s, so the RPO must be at least {needed:.0f}s; raise --rpo, or make "
            "copies faster (--transfers, fewer objects per set)",
        )  # fmt: skip
    wait = min(max(floor, left / 2), MAX_COALESCE_S) if event_driven else left
    return Schedule(
        rpo_s, event_driven, copy, measured, estimated_from, wait, reconcile, True,
        f"the worst expected lag, {wait + copy * COPY_FACTOR:.1f}s, is within the budget",
    )  # fmt: skip


def copy_estimate(durations: Sequence[float]) -> float | None:
    """What the next copy will take, from recent ones (newest last): their median, pulled toward the newest,
    so one slow copy raises the estimate without one fast copy hiding a slowdown."""
    recent = [d for d in durations[-5:] if d >= 0]
    if not recent:
        return None
    ordered = sorted(recent)
    median = ordered[len(ordered) // 2]
    return max(median, (median + recent[-1]) / 2)
