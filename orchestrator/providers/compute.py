"""The compute contract every VM provider implements: start, stop, launch, terminate, find and wait on instances.

Instances are named by the provider's ids (``i-0abc...`` on EC2). Every method raises only errors from
:mod:`orchestrator.errors`:

- an unknown or malformed instance id raises ``NotFound`` naming it;
- the caller lacking a permission raises ``PermissionDenied``;
- throttling, 5xx answers and lost connections raise ``Transient`` (after the provider's own retries);
- asking for something the instance's state forbids (starting a terminated instance) raises ``Permanent``.

``start``, ``stop`` and ``terminate`` are idempotent: an instance already in (or moving to) the asked-for
state is left as it is and is not an error, so a step can be repeated after a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

from orchestrator.errors import NotFound, ShortOfCapacity

InstanceState = Literal["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]
INSTANCE_STATES: frozenset[str] = frozenset(
    {"pending", "running", "stopping", "stopped", "shutting-down", "terminated"}
)
MAX_CLIENT_TOKEN = 64
"""EC2's limit on a ClientToken's length (ASCII characters)."""


@dataclass(frozen=True)
class LaunchSpec:
    """What to launch: from a launch ``template`` (name or id) or an ``image`` (or both, the image overriding
    the template's), ``count`` instances into ``subnet`` with ``security_groups``, each tagged with ``tags``,
    in one request.

    ``at_least`` accepts a partial launch (EC2's MinCount): short of capacity, the provider launches what it
    can, from ``at_least`` up to ``count``, and the caller asks again for the rest. ``client_token`` makes the
    request idempotent where the provider supports it (EC2's ClientToken): a repeat with the same token returns
    the first request's instances instead of launching more, so the request may be retried."""

    image: str | None = None
    template: str | None = None
    instance_type: str | None = None
    subnet: str | None = None
    security_groups: tuple[str, ...] = ()
    count: int = 1
    tags: Mapping[str, str] = field(default_factory=dict)
    at_least: int | None = None
    client_token: str | None = None

    def __post_init__(self) -> None:
        if self.image is None and self.template is None:
            raise ValueError("a launch needs an image or a template")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.at_least is not None and not 1 <= self.at_least <= self.count:
            raise ValueError("at_least must be between 1 and count")
        if self.client_token is not None and not 0 < len(self.client_token) <= MAX_CLIENT_TOKEN:
            raise ValueError(f"a client token has 1 to {MAX_CLIENT_TOKEN} characters")

    @property
    def minimum(self) -> int:
        """The fewest instances this request accepts."""
        return self.count if self.at_least is None else self.at_least


@dataclass(frozen=True)
class InstanceInfo:
    """One instance as last described."""

    id: str
    state: str
    image: str | None = None
    subnet: str | None = None
    private_ip: str | None = None
    public_ip: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    instance_type: str | None = None


@dataclass(frozen=True)
class WaitResult:
    """How a ``wait`` ended: ``reached`` says every instance got to the state; ``states`` are the last seen."""

    reached: bool
    states: Mapping[str, str]
    waited_s: float
    infos: Mapping[str, InstanceInfo] = field(default_factory=dict)
    """The last descriptions (empty when the instances could not be described): callers read addresses from
    here rather than describing the instances once more."""


@runtime_checkable
class Compute(Protocol):
    """Instances in one region of one account."""

    @property
    def region(self) -> str: ...

    def start(self, ids: Sequence[str]) -> None:
        """Start stopped instances; running or pending ones are left alone. Raises ``NotFound``, ``Permanent``
        (e.g. a terminated instance)."""
        ...

    def stop(self, ids: Sequence[str]) -> None:
        """Stop running instances; stopped or stopping ones are left alone. Raises ``NotFound``, ``Permanent``."""
        ...

    def launch(self, spec: LaunchSpec) -> tuple[str, ...]:
        """Launch ``spec.count`` new instances (at least ``spec.minimum``) tagged with ``spec.tags``; returns
        their ids. Idempotent only through ``spec.client_token`` where the provider has one: callers that must
        not launch twice also look for their tags with ``find`` first."""
        ...

    def terminate(self, ids: Sequence[str]) -> None:
        """Terminate instances; already terminated ones are not an error. Raises ``NotFound`` for unknown ids."""
        ...

    def describe(self, ids: Sequence[str]) -> dict[str, InstanceInfo]:
        """Each instance by id. Raises ``NotFound`` if any id is unknown."""
        ...

    def find(self, tags: Mapping[str, str]) -> tuple[str, ...]:
        """Ids of the instances carrying every tag in ``tags`` that are not terminated or being terminated,
        sorted. An empty ``tags`` raises ``ValueError``: it would select every instance in the region."""
        ...

    def find_described(self, tags: Mapping[str, str]) -> dict[str, InstanceInfo]:
        """``find`` with each instance described: where the lookup already returns full records (EC2), callers
        that need the tags or state make no second request."""
        ...

    def status_ok(self, ids: Sequence[str]) -> dict[str, bool]:
        """Per instance, whether it is running and its instance and system status checks pass."""
        ...

    def wait(
        self, ids: Sequence[str], state: str, deadline: float, sleep: Callable[[float], bool] | None = None
    ) -> WaitResult:
        """Poll until every instance is in ``state`` or ``time.monotonic()`` passes ``deadline``; ``sleep``
        returns False to stop early. Bounded; see :func:`wait_for_state`."""
        ...


LAUNCH_ROUNDS = 5
"""Requests for one launch when the provider is short of capacity and launches fewer than asked."""

Launched = Callable[[tuple[str, ...], Mapping[str, str]], None]
"""Told each request's new ids and its timing (``launch_asked``, ``launch_returned``) as soon as it returns."""
Token = Callable[[int, bool], str]
"""The client token of a request made when ``n`` instances exist already, accepting a partial launch or not."""


def launch_all(
    compute: Compute,
    spec: LaunchSpec,
    token: Token | None,
    launched: Launched,
    short: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Launch ``spec.count`` instances in as few requests as capacity allows, at most ``LAUNCH_ROUNDS``.

    The first request asks for all of them at once (all or nothing). Refused as ``ShortOfCapacity``, the next
    ones accept a partial launch (at least one) and each asks again for the rest; ``short(got, asked)`` hears
    of every request that got fewer than it asked for. Returns the new ids, fewer than asked when capacity
    stayed short: the caller decides what that means."""
    got: list[str] = []
    partial = False
    for _ in range(LAUNCH_ROUNDS):
        rest = spec.count - len(got)
        if rest <= 0:
            break
        request = replace(
            spec,
            count=rest,
            at_least=1 if partial else None,
            client_token=token(len(got), partial) if token else None,
        )
        asked = datetime.now(UTC).isoformat()
        try:
            new = compute.launch(request)
        except ShortOfCapacity:
            if partial:
                raise
            partial = True  # all or nothing was refused: take what there is
            if short is not None:
                short(0, rest)
            continue
        launched(new, {"launch_asked": asked, "launch_returned": datetime.now(UTC).isoformat()})
        got.extend(new)
        if not new:
            break
        if len(new) < rest and short is not None:
            short(len(new), rest)
    return got


def shortfall(region: str, got: int, asked: int, what: str) -> str:
    """The log line of a launch request that got fewer ``what`` than it asked for."""
    if got == 0:
        return f"{region} cannot launch {asked} {what} at once (short of capacity); launching what there is"
    return f"{region} launched {got} of {asked} {what} in one request (short of capacity); asking for the rest"


def wait_for_state(
    compute: Compute,
    ids: Sequence[str],
    state: str,
    deadline: float,
    *,
    interval_s: float = 5.0,
    first_interval_s: float = 1.0,
    missing_ok: bool = False,
    sleep: Callable[[float], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    describe: Callable[[Sequence[str]], dict[str, InstanceInfo]] | None = None,
) -> WaitResult:
    """Poll ``describe`` (``compute.describe`` unless the provider reads states another way) until every
    instance is in ``state`` or ``clock()`` reaches ``deadline``: first after ``first_interval_s``, the pause
    doubling up to ``interval_s``, so a change that takes a second is seen in a second, and one that takes
    minutes costs a describe every ``interval_s`` (each poll is one call for all of ``ids``). ``sleep(seconds)``
    returns False to stop early (cancellation); the default sleeps and returns True. Bounded: the last poll is
    at or just after ``deadline``.

    ``missing_ok`` treats ``NotFound`` as "not visible yet" (state ``unknown``) rather than an error: EC2's
    reads are eventually consistent, so instances launched a moment ago may not be described yet.
    """
    if state not in INSTANCE_STATES:
        raise ValueError(f"unknown instance state {state!r}")
    pause = sleep or _sleep
    started = clock()
    wait_s = min(first_interval_s, interval_s)
    while True:
        try:
            infos = (describe or compute.describe)(ids)
        except NotFound:
            if not missing_ok:
                raise
            infos = {}
        states = {i: infos[i].state if i in infos else "unknown" for i in ids}
        now = clock()
        if all(s == state for s in states.values()):
            return WaitResult(True, states, round(now - started, 3), infos)
        if now >= deadline or not pause(min(wait_s, max(0.0, deadline - now))):
            return WaitResult(False, states, round(clock() - started, 3), infos)
        wait_s = min(interval_s, wait_s * 2)


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True
