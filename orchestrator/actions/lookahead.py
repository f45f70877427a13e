"""Looking up a later tier's instances while the tier before it comes up.

``compute.start`` selects its instances when it begins: one DescribeInstances filtered by tags (one listing of
the resource group on Azure). On a tiered runbook that lookup sat on the critical path of every tier, before
any instance of the tier was started. Recovery plans in AWS DRS and Azure Site Recovery fix their members when
the job starts; drctl does the same one tier ahead. Once a ``compute.start`` has made its changes, the next
tier's first ``compute.start`` (by tags, its parameters known before the run) is looked up in the background
while this tier boots and is health-checked.

A lookup made ahead is used only where a fresh one would find the same, as far as the run can tell:

- it began after the step that asked for it had made its changes, while every other running step was one that
  never changes instances (``KEEPS_INSTANCES``);
- no step that may change instances started between the lookup and the step that uses it;
- the step asks with the same resolved parameters, on its first attempt (a retry looks up again), and the
  lookup is at most ``MAX_AGE_S`` old. Compensations never use one.

Anything else, an error of the lookup included, makes the step look up for itself, as it did before. What the
run cannot see is a change made outside it (by hand, by ``pulumi up``, a reclaimed instance) while the tier before
came up; ``MAX_AGE_S`` bounds how old that view may be, and a failover start that meets an instance gone since
looks up again (``compute_start.run``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from orchestrator.providers.compute import InstanceInfo

KEEPS_INSTANCES = frozenset(
    {
        "backup.copy",
        "backup.restore",
        "backup.verify",
        "compute.wait_healthy",
        "db.check",
        "db.restore",
        "dns.failback",
        "dns.failover",
        "http.check",
        "image.ensure",
        "notify",
        "wait",
    }
)
"""Actions that never launch, start, stop, terminate or retag an instance. ``shell`` may do anything, and an
action not listed here is assumed to change instances."""

MAX_AGE_S = 300.0
"""The oldest lookup a step will use: after a tier that took longer than this, the next looks up again."""

IN_FLIGHT_WAIT_S = 10.0
"""How long a step waits for its lookup if it is still under way when the step begins."""

Fetch = Callable[[Any], Mapping[str, InstanceInfo] | None]
"""Looks up the instances a step's resolved parameters select, or None if they do not select by tags."""


@dataclass(frozen=True)
class Planned:
    """A ``compute.start`` whose parameters were known before the run: its wave and those parameters."""

    step_id: str
    wave: int
    params: Any


@dataclass
class _Ahead:
    step_id: str
    params: Any
    began: float
    found: Future[Mapping[str, InstanceInfo] | None]
    valid: bool = True


@dataclass(frozen=True)
class Taken:
    """A lookup made ahead, handed to the step it was made for."""

    found: Mapping[str, InstanceInfo]
    age_s: float


class SelectionLookahead:
    """One run's lookups ahead. The executor reports each step as it starts and ends; ``compute.start`` calls
    ``wrote`` once its changes are made and ``take`` when it begins."""

    def __init__(
        self,
        planned: Sequence[Planned],
        actions: Mapping[str, str],
        waves: Mapping[str, int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._planned = sorted(planned, key=lambda p: p.wave)
        self._actions = dict(actions)
        self._waves = dict(waves)
        self._clock = clock
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._done_writing: set[str] = set()
        self._started: set[str] = set()
        self._ahead: dict[str, _Ahead] = {}
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookahead")

    def starting(self, step_id: str) -> None:
        """An attempt of ``step_id`` begins (a retry of a step that already called ``wrote`` may change
        instances again, so it counts as a new start)."""
        with self._lock:
            if step_id in self._started:
                self._ahead.pop(step_id, None)  # a lookup is for a step's first attempt only
            self._running.add(step_id)
            self._started.add(step_id)
            self._done_writing.discard(step_id)
            if self._actions.get(step_id) in KEEPS_INSTANCES:
                return
            for ahead in self._ahead.values():
                if ahead.step_id != step_id:
                    ahead.valid = False

    def ended(self, step_id: str) -> None:
        """``step_id`` has ended, whatever its outcome."""
        with self._lock:
            self._running.discard(step_id)

    def wrote(self, step_id: str, fetch: Fetch) -> None:
        """``step_id`` has made its changes: look up the first planned step of a later wave that has not
        begun, if nothing else that may change instances is running."""
        with self._lock:
            self._done_writing.add(step_id)
            busy = [
                s for s in self._running if s not in self._done_writing and self._actions.get(s) not in KEEPS_INSTANCES
            ]
            after = self._waves.get(step_id, 0)
            following = next((p for p in self._planned if p.wave > after and p.step_id not in self._started), None)
            if self._closed or busy or following is None or following.step_id in self._ahead:
                return
            self._ahead[following.step_id] = _Ahead(
                following.step_id, following.params, self._clock(), self._pool.submit(fetch, following.params)
            )

    def take(self, step_id: str, params: Any) -> Taken | None:
        """The lookup made ahead for ``step_id`` with these resolved ``params``, if it may stand for a fresh one;
        None otherwise. Once only. A lookup still under way began earlier than the step's own would, so it is
        waited for, but at most ``IN_FLIGHT_WAIT_S``: it may be stuck in its retries."""
        with self._lock:
            ahead = self._ahead.pop(step_id, None)
        if ahead is None or not ahead.valid or ahead.params != params:
            return None
        try:
            found = ahead.found.result(timeout=IN_FLIGHT_WAIT_S)
        except Exception:  # noqa: BLE001 - the step looks up for itself and meets the error there, reported
            return None
        age = self._clock() - ahead.began
        with self._lock:
            still_valid = ahead.valid
        if found is None or not still_valid or age > MAX_AGE_S:
            return None
        return Taken(found, age)

    def close(self) -> None:
        """At the run's end: no more lookups; one still under way ends on its own (within its retries)."""
        with self._lock:
            self._closed = True
            self._ahead.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def plan_of(steps: Mapping[str, tuple[str, int, Any]]) -> tuple[list[Planned], dict[str, str], dict[str, int]]:
    """From step id -> (action, wave, parameters if known before the run else None): what to look up ahead."""
    planned = [
        Planned(step_id, wave, params)
        for step_id, (action, wave, params) in steps.items()
        if action == "compute.start" and params is not None
    ]
    return planned, {k: v[0] for k, v in steps.items()}, {k: v[1] for k, v in steps.items()}
