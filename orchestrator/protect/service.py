"""The ``drctl protect`` loop: wait for a change (or the schedule), take an incremental point, repeat.

Each point is exactly what ``drctl backup copy --mode incremental`` makes (a full one into a new set), so
``list``, ``verify``, ``restore`` and ``prune`` work on it unchanged, and a point killed halfway resumes from
the copy journal at the next start. The first point after a start is always a full listing (a
reconciliation), and so is one every ``reconcile_s`` in event mode: whatever events were lost, the set
catches up.

Errors never end the service: each failed attempt is logged, counted in the metrics by kind, and retried
with jittered exponential back-off (tenacity) while the lag metric, and the alerts, show the cost. Only a
stop (SIGTERM, Ctrl-C) ends it; a point in flight is then abandoned unsealed, to be resumed next time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from orchestrator.backup.copy import CopyOptions, Filters, execute_copy, plan_copy
from orchestrator.backup.journal import CopyJournal
from orchestrator.backup.manifest import Mode
from orchestrator.backup.sets import BackupSet
from orchestrator.errors import Cancelled, DrError
from orchestrator.protect.alerts import LagAlerts
from orchestrator.protect.changes import ChangeSource
from orchestrator.protect.metrics import ProtectMetrics
from orchestrator.protect.schedule import Schedule, copy_estimate, derive
from orchestrator.protect.status import ProtectStatus, write_status
from orchestrator.providers.base import ObjectStore

MAX_BACKOFF_S = 60.0


@dataclass
class ProtectConfig:
    rpo_s: float
    event_driven: bool = False
    filters: Filters = field(default_factory=Filters)
    transfers: int = 8
    bwlimit: float | None = None
    reconcile_s: float | None = None


@dataclass
class ProtectState:
    """What the metrics and the alerts read; times are wall-clock (``time.time``)."""

    synced_at: float | None = None
    """When the listing of the newest point (or of a check that found nothing to copy) started."""
    last_point_at: float | None = None
    synced_here_at: float | None = None
    """When this process's own newest listing started: events are trusted only from then on (what changed
    while the service was down, no event may tell)."""
    durations: list[float] = field(default_factory=list)
    points: int = 0


def error_kind(err: BaseException) -> str:
    """A short label for the ``errors_total`` metric: the error's class, as words."""
    name = type(err).__name__
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


class ProtectService:
    def __init__(
        self,
        source: ObjectStore,
        bset: BackupSet,
        changes: ChangeSource,
        journal: CopyJournal,
        config: ProtectConfig,
        stop: threading.Event,
        log: Callable[[str], None],
        alert_webhook: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._set = bset
        self._changes = changes
        self._journal = journal
        self._config = config
        self._stop = stop
        self._log = log
        self._clock = clock
        self.state = ProtectState()
        self._started_at = clock()
        self._seed_from_set()
        self.metrics = ProtectMetrics(bset.url, config.rpo_s, self.lag, self.last_point_age)
        self.alerts = LagAlerts(bset.url, config.rpo_s, log, alert_webhook, self.metrics.error)
        self.schedule = self._derive()

    # -- what it measures -----------------------------------------------------------------------------------

    def _seed_from_set(self) -> None:
        """Start from the set's own history: its newest point of this source, and how long recent copies took."""
        mine = [p for p in self._set.points() if p.source == self._source.url]
        if mine:
            newest = mine[-1]
            self.state.last_point_at = newest.created.timestamp()
            self.state.synced_at = newest.started.timestamp()
            self.state.durations = [(p.created - p.started).total_seconds() for p in mine[-5:]]

    def _derive(self) -> Schedule:
        estimate = copy_estimate(self.state.durations)
        schedule = derive(self._config.rpo_s, self._config.event_driven, estimate, self._config.reconcile_s)
        self.metrics.feasible.set(1 if schedule.feasible else 0)
        return schedule

    def _write_status(self) -> None:
        """Leave in the set when it was last in sync, for restores and reports (``orchestrator.protect.status``)."""
        assert self.state.synced_at is not None, "called after a sync"
        synced = datetime.fromtimestamp(self.state.synced_at, UTC).isoformat()
        written = datetime.fromtimestamp(self._clock(), UTC).isoformat()
        write_status(self._set.store, ProtectStatus(self._source.url, self._config.rpo_s, synced, written))

    def lag(self) -> float:
        """The age of the oldest change no sealed point holds. With events, that is the oldest pending event;
        without, any change since the newest point's listing may be missing, so its age is the bound."""
        now = self._clock()
        pending = self._changes.oldest_pending()
        if pending is not None:
            return max(0.0, now - pending.timestamp())
        here = self.state.synced_here_at
        # Events are trusted between reconciliations; past a missed one, the listing bound applies again.
        if self._config.event_driven and here is not None and now - here <= self.schedule.reconcile_s * 2:
            return 0.0
        # A source never protected before: what it held at the service's start is the oldest unprotected change.
        since = self.state.synced_at if self.state.synced_at is not None else self._started_at
        return max(0.0, now - since)

    def last_point_age(self) -> float:
        return max(0.0, self._clock() - self.state.last_point_at) if self.state.last_point_at else float("inf")

    # -- the loop -------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Until stopped: a point at start (reconciliation), then one whenever the schedule says."""
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, DrError) and not isinstance(e, Cancelled)),
            wait=wait_exponential_jitter(initial=1.0, max=min(MAX_BACKOFF_S, self._config.rpo_s / 2), jitter=1.0),
            stop=lambda _: self._stop.is_set(),
            sleep=self._sleep,
            before_sleep=self._failed,
            reraise=True,
        )
        due = self._clock()  # the first point is a reconciliation, at once
        while not self._stop.is_set():
            try:
                retrying(self._wait_until, due)
                if self._stop.is_set():
                    break
                retrying(self._point)
            except Cancelled:
                break
            except DrError as err:  # only once stopping: the retry loop ends on the stop
                self._log(f"stopping after an error: {err}")
                break
            due = self._next_due()
        self._log("stopped; a point in flight is resumed at the next start")

    def _sleep(self, seconds: float) -> None:
        self.alerts.check(self.lag())
        self._stop.wait(seconds)

    def _failed(self, state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        kind = error_kind(err) if err else "unknown"
        self.metrics.error(kind)
        wait = state.next_action.sleep if state.next_action else 0.0
        self._log(f"attempt {state.attempt_number} failed ({err}); retrying in {wait:.1f}s")

    def _next_due(self) -> float:
        """Polling: the next listing. Events: the next reconciliation; an event brings a point forward."""
        base = self.state.synced_at or self._clock()
        return base + (self.schedule.reconcile_s if self.schedule.event_driven else self.schedule.wait_s)

    def _wait_until(self, due: float) -> None:
        while not self._stop.is_set():
            now = self._clock()
            self.alerts.check(self.lag())
            pending = self._changes.oldest_pending()
            if pending is not None and now - pending.timestamp() >= self.schedule.wait_s:
                return
            if now >= due:
                return
            until = due if pending is None else min(due, pending.timestamp() + self.schedule.wait_s)
            # Short waits keep a stop (SIGTERM) prompt: it is noticed between two of them.
            self._changes.wait(min(until - now, 2.0))

    def _point(self) -> None:
        mark = self._changes.covered_now()
        listed_at = self._clock()
        mode: Mode = "incremental" if self.state.last_point_at is not None else "full"
        options = CopyOptions(
            mode, self._config.filters, self._config.transfers, self._config.bwlimit, cancelled=self._stop.is_set
        )
        plan = plan_copy(self._source, self._set, options)
        base = plan.base_point
        same_keys = base is not None and {o.info.key for o in plan.objects} == {e.key for e in base.objects}
        if base is not None and not plan.to_transfer and same_keys:
            # Nothing changed since the newest point: no new point, but the set is known to be in sync.
            self.state.synced_at = self.state.synced_here_at = listed_at
            self._changes.ack(mark)
            self._write_status()
            return
        result = execute_copy(plan, self._source, self._set, options, self._journal)
        now = self._clock()
        self.state.synced_at = self.state.synced_here_at = listed_at
        self.state.last_point_at = now
        self.state.durations = [*self.state.durations[-4:], now - listed_at]
        self.state.points += 1
        acked = self._changes.ack(mark)
        self._write_status()
        self.metrics.points.inc()
        self.metrics.bytes.inc(result.bytes_transferred)
        previous = self.schedule
        self.schedule = self._derive()
        self._log(
            f"point {result.recovery_point} sealed ({mode}): {result.objects_transferred} changed "
            f"({result.resumed_objects} resumed from an unfinished point), "
            f"{result.bytes_transferred} bytes in {result.seconds:.1f}s; {acked} event(s) covered; "
            f"lag {self.lag():.1f}s"
        )
        if previous.feasible and not self.schedule.feasible:
            self._log(f"the objective can no longer be met: {self.schedule.why}")
        self.alerts.check(self.lag())
