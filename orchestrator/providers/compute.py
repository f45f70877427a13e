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
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from orchestrator.errors import NotFound

InstanceState = Literal["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]
INSTANCE_STATES: frozenset[str] = frozenset(
    {"pending", "running", "stopping", "stopped", "shutting-down", "terminated"}
)


@dataclass(frozen=True)
class LaunchSpec:
    """What to launch: from a launch ``template`` (name or id) or an ``image`` (or both, the image overriding
    the template's), ``count`` instances into ``subnet`` with ``security_groups``, each tagged with ``tags``."""

    image: str | None = None
    template: str | None = None
    instance_type: str | None = None
    subnet: str | None = None
    security_groups: tuple[str, ...] = ()
    count: int = 1
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image is None and self.template is None:
            raise ValueError("a launch needs an image or a template")
        if self.count < 1:
            raise ValueError("count must be at least 1")


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
        """Launch ``spec.count`` new instances tagged with ``spec.tags``; returns their ids. Not idempotent by
        itself: callers that must not launch twice look for their tags with ``find`` first."""
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


def wait_for_state(
    compute: Compute,
    ids: Sequence[str],
    state: str,
    deadline: float,
    *,
    interval_s: float = 5.0,
    missing_ok: bool = False,
    sleep: Callable[[float], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    describe: Callable[[Sequence[str]], dict[str, InstanceInfo]] | None = None,
) -> WaitResult:
    """Poll ``describe`` (``compute.describe`` unless the provider reads states another way) every ``interval_s``
    until every instance is in ``state`` or ``clock()`` reaches ``deadline``. ``sleep(seconds)`` returns False
    to stop early (cancellation); the default sleeps and returns True. Bounded: the last poll is at or just
    after ``deadline``.

    ``missing_ok`` treats ``NotFound`` as "not visible yet" (state ``unknown``) rather than an error: EC2's
    reads are eventually consistent, so instances launched a moment ago may not be described yet.
    """
    if state not in INSTANCE_STATES:
        raise ValueError(f"unknown instance state {state!r}")
    pause = sleep or _sleep
    started = clock()
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
        if now >= deadline or not pause(min(interval_s, max(0.0, deadline - now))):
            return WaitResult(False, states, round(clock() - started, 3), infos)


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True
