"""The DNS contract the failover actions are written against, and the INSYNC wait written once above it.

A record set is named by its zone (hosted-zone id or name), its name and its type. Failover routing keeps two
record sets under one name and type, told apart by their ``set_identifier``, one with the PRIMARY role and
one SECONDARY; resolvers get the PRIMARY while its health check passes.

How a failover is made here: ``promote`` swaps the roles, so the named set becomes PRIMARY and the other one
SECONDARY, in one atomic change batch. Failing the primary's health check (inverting it) would also shift
traffic, but only once the checkers notice, it cannot be observed on an emulator (LocalStack never evaluates
health checks), and it leaves traffic at the mercy of the secondary's own health. Swapping roles is explicit,
immediately visible in the record sets, and undone by promoting the other set.

Every method raises only errors from :mod:`orchestrator.errors`: ``NotFound`` for a missing zone or record,
``Permanent`` for a change the service refuses, ``PermissionDenied``/``AuthError`` for credentials, and
``Transient`` for throttling, a previous change still in progress, or 5xx answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

FailoverRole = Literal["PRIMARY", "SECONDARY"]
ChangeStatus = Literal["PENDING", "INSYNC"]


def fqdn(name: str) -> str:
    """``app.example.com`` as DNS services return it: lowercase with the trailing dot."""
    return name.lower().rstrip(".") + "."


@dataclass(frozen=True)
class RecordSet:
    """One record set. ``set_identifier`` and ``failover`` are set only for failover routing records."""

    name: str
    type: str
    ttl: int | None
    values: tuple[str, ...]
    set_identifier: str | None = None
    failover: FailoverRole | None = None
    health_check_id: str | None = None

    def describe(self) -> str:
        """A one-line summary for outputs and logs: ``PRIMARY=recovery(10.0.0.2)`` or ``10.0.0.1,10.0.0.3``."""
        values = ",".join(self.values)
        if self.failover is not None:
            return f"{self.failover}={self.set_identifier}({values})"
        return values


@dataclass(frozen=True)
class ChangeResult:
    """What a switch did. ``changed`` is False when the wanted state was already in effect, in which case no
    change was submitted and ``change_id`` is None. ``previous``/``new`` are ``RecordSet.describe`` texts."""

    changed: bool
    change_id: str | None
    previous: str
    new: str


@runtime_checkable
class Dns(Protocol):
    """A DNS service holding zones of record sets (Route53, and the in-memory fakes of the tests).

    Contract:

    - ``records`` returns every record set with exactly that name and type (several for failover routing),
      or raises ``NotFound`` if the zone is missing; an absent record is an empty tuple.
    - ``promote`` and ``point`` are idempotent: when the wanted state is already in effect they submit
      nothing and return ``changed=False``. Otherwise they submit one atomic change and return its id.
    - A change is visible to ``records`` once submitted; ``change_status`` tells when it has reached every
      authoritative server (``INSYNC``).
    """

    def zone_id(self, zone: str) -> str:
        """The hosted-zone id for a zone given by id or by name. Raises ``NotFound``; ``Permanent`` if a name
        matches more than one zone (a public and a private zone), so the caller must give the id."""
        ...

    def records(self, zone: str, name: str, type: str) -> tuple[RecordSet, ...]:
        """Record sets named ``name`` of ``type``. Raises ``NotFound`` for a missing zone."""
        ...

    def promote(self, zone: str, name: str, type: str, set_identifier: str) -> ChangeResult:
        """Make the failover record ``set_identifier`` PRIMARY and every other failover record of that name and
        type SECONDARY, in one change. Raises ``NotFound`` if the zone or that record is missing, ``Permanent``
        if the records are not failover records."""
        ...

    def point(self, zone: str, name: str, type: str, values: tuple[str, ...], ttl: int) -> ChangeResult:
        """UPSERT a simple (non-failover) record so it holds ``values`` with ``ttl``. Raises ``Permanent``
        if the name holds failover records (use ``promote``), ``NotFound`` for a missing zone."""
        ...

    def remove(self, zone: str, name: str, type: str) -> ChangeResult:
        """Delete the simple record of that name and type (how a drill's cleanup takes away a record it made);
        an absent record is ``changed=False``. Raises ``Permanent`` for failover records, ``NotFound`` for a
        missing zone."""
        ...

    def change_status(self, change_id: str) -> ChangeStatus:
        """The propagation state of a submitted change. Raises ``NotFound`` for an unknown id."""
        ...


@dataclass(frozen=True)
class InsyncWait:
    """The end of ``wait_insync``: whether the change reached INSYNC and after how many seconds."""

    insync: bool
    seconds: float


def wait_insync(
    dns: Dns,
    change_id: str,
    *,
    timeout_s: float,
    interval_s: float = 5.0,
    sleep: Callable[[float], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> InsyncWait:
    """Poll ``change_status`` every ``interval_s`` until INSYNC or ``timeout_s`` has passed.

    ``sleep(seconds)`` returns False when the wait was cut short (the run was cancelled or the step's deadline
    came), which ends the polling at once; the default sleeps fully. Provider errors propagate.
    """
    if timeout_s <= 0 or interval_s <= 0:
        raise ValueError("timeout_s and interval_s must be positive")
    nap = sleep or _full_sleep
    started = clock()
    while True:
        if dns.change_status(change_id) == "INSYNC":
            return InsyncWait(True, round(clock() - started, 3))
        left = timeout_s - (clock() - started)
        if left <= 0 or not nap(min(interval_s, left)):
            return InsyncWait(False, round(clock() - started, 3))


def _full_sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True
