"""An in-memory ``Compute`` for unit tests of the drill code and the compute actions.

Instances live in a dict guarded by a lock (drill copies are launched from a thread pool). ``start``, ``stop``,
``terminate`` and ``launch`` change states at once, so a ``wait`` observes once and never sleeps. Every call is
noted in ``calls`` and every launch's ``LaunchSpec`` in ``launches``; ``fail(method, error)`` makes a method
raise, for the next ``times`` calls or for good. Unknown ids raise ``NotFound`` as the real providers do.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from orchestrator.errors import NotFound, Permanent, ShortOfCapacity
from orchestrator.providers.compute import InstanceInfo, LaunchSpec, WaitResult

GONE = frozenset({"terminated", "shutting-down"})
METHODS = frozenset(
    {"start", "stop", "launch", "terminate", "describe", "find", "find_described", "status_ok", "wait", "tagged"}
)


@dataclass(frozen=True)
class FakeInstance:
    id: str
    state: str
    image: str | None = None
    instance_type: str | None = None
    subnet: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    private_ip: str | None = None
    security_groups: tuple[str, ...] = ()

    def info(self) -> InstanceInfo:
        return InstanceInfo(
            id=self.id,
            state=self.state,
            image=self.image,
            subnet=self.subnet,
            private_ip=self.private_ip,
            tags=dict(self.tags),
            instance_type=self.instance_type,
        )


@dataclass
class _Failure:
    error: Exception
    times: int | None


class FakeCompute:
    """Instances of one region, in memory. Thread-safe: every method holds one re-entrant lock."""

    def __init__(self, region: str = "eu-west-1", *, launch_state: str = "running") -> None:
        self._region = region
        self._launch_state = launch_state
        self._lock = threading.RLock()
        self._instances: dict[str, FakeInstance] = {}
        self._numbers = itertools.count(1)
        self._failures: dict[str, _Failure] = {}
        self.launches: list[LaunchSpec] = []
        """Every launch's spec, in the order the launches were made (failed ones included)."""
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        """``(method, ids)`` for every call; ``ids`` is empty for ``launch``, ``find`` and ``tagged``."""
        self.on_launch: Callable[[LaunchSpec], None] | None = None
        """Called (outside the lock) at the start of each launch: tests synchronise concurrent launches here."""
        self.capacity: int | None = None
        """At most this many instances per launch request (None: no limit), as EC2 short of capacity: a request
        that accepts fewer (``at_least``) gets what there is, one that does not is refused as ``ShortOfCapacity``."""
        self._tokens: dict[str, tuple[str, ...]] = {}

    # -- set-up and inspection ----------------------------------------------------------------------------------

    @property
    def region(self) -> str:
        return self._region

    def add(
        self,
        *,
        state: str = "stopped",
        image: str | None = "ami-standby",
        instance_type: str | None = "t3.micro",
        subnet: str | None = "subnet-recovery-a",
        tags: Mapping[str, str] | None = None,
        private_ip: str | None = None,
        instance_id: str | None = None,
    ) -> str:
        """Put an instance in place (no call is noted); returns its id."""
        with self._lock:
            number = next(self._numbers)
            iid = instance_id or f"i-{number:017x}"
            if iid in self._instances:
                raise ValueError(f"instance {iid} exists already")
            ip = private_ip if private_ip is not None else f"10.0.{number // 250}.{number % 250 + 1}"
            self._instances[iid] = FakeInstance(iid, state, image, instance_type, subnet, dict(tags or {}), ip)
            return iid

    def instance(self, iid: str) -> FakeInstance:
        with self._lock:
            return self._instances[iid]

    def state(self, iid: str) -> str:
        return self.instance(iid).state

    def ids(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._instances))

    def set_state(self, iid: str, state: str) -> None:
        with self._lock:
            self._instances[iid] = replace(self._instances[iid], state=state)

    def called(self, method: str) -> list[tuple[str, ...]]:
        """The ids of every call of ``method``."""
        with self._lock:
            return [ids for name, ids in self.calls if name == method]

    def fail(self, method: str, error: Exception, times: int | None = 1) -> None:
        """Make ``method`` raise ``error`` for its next ``times`` calls (None: every call from now on)."""
        if method not in METHODS:
            raise ValueError(f"no method {method!r}")
        with self._lock:
            self._failures[method] = _Failure(error, times)

    def _enter(self, method: str, ids: Sequence[str] = ()) -> None:
        """Note the call and raise an injected failure. Callers hold the lock."""
        self.calls.append((method, tuple(ids)))
        failure = self._failures.get(method)
        if failure is None:
            return
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self._failures[method]
        raise failure.error

    def _known(self, ids: Sequence[str]) -> list[FakeInstance]:
        missing = [i for i in ids if i not in self._instances]
        if missing:
            raise NotFound(f"{', '.join(missing)}: does not exist")
        return [self._instances[i] for i in ids]

    def _set(self, instances: list[FakeInstance], state: str) -> None:
        for inst in instances:
            self._instances[inst.id] = replace(inst, state=state)

    # -- the Compute protocol -----------------------------------------------------------------------------------

    def start(self, ids: Sequence[str]) -> None:
        with self._lock:
            self._enter("start", ids)
            known = self._known(ids)
            gone = [i.id for i in known if i.state in GONE]
            if gone:
                raise Permanent(f"{', '.join(gone)} is terminated and cannot be started")
            self._set([i for i in known if i.state in ("stopped", "stopping")], "running")

    def stop(self, ids: Sequence[str]) -> None:
        with self._lock:
            self._enter("stop", ids)
            known = self._known(ids)
            gone = [i.id for i in known if i.state in GONE]
            if gone:
                raise Permanent(f"{', '.join(gone)} is terminated and cannot be stopped")
            self._set([i for i in known if i.state in ("pending", "running")], "stopped")

    def terminate(self, ids: Sequence[str]) -> None:
        with self._lock:
            self._enter("terminate", ids)
            self._set([i for i in self._known(ids) if i.state not in GONE], "terminated")

    def launch(self, spec: LaunchSpec) -> tuple[str, ...]:
        with self._lock:
            self.launches.append(spec)
            self._enter("launch")
        if self.on_launch is not None:
            self.on_launch(spec)
        with self._lock:
            if spec.client_token is not None and spec.client_token in self._tokens:
                return self._tokens[spec.client_token]  # as EC2: a repeated token gets the first request's instances
            count = spec.count if self.capacity is None else min(spec.count, self.capacity)
            if count < spec.minimum:
                raise ShortOfCapacity(f"InsufficientInstanceCapacity: {count} of at least {spec.minimum} available")
            launched: list[str] = []
            for _ in range(count):
                number = next(self._numbers)
                iid = f"i-{number:017x}"
                self._instances[iid] = FakeInstance(
                    iid,
                    self._launch_state,
                    spec.image,
                    spec.instance_type,
                    spec.subnet,
                    dict(spec.tags),
                    f"10.9.{number // 250}.{number % 250 + 1}",
                    tuple(spec.security_groups),
                )
                launched.append(iid)
            if spec.client_token is not None:
                self._tokens[spec.client_token] = tuple(launched)
            return tuple(launched)

    def describe(self, ids: Sequence[str]) -> dict[str, InstanceInfo]:
        with self._lock:
            self._enter("describe", ids)
            return {i.id: i.info() for i in self._known(ids)}

    def find(self, tags: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(sorted(self._matching("find", tags)))

    def find_described(self, tags: Mapping[str, str]) -> dict[str, InstanceInfo]:
        return self._matching("find_described", tags)

    def _matching(self, call: str, tags: Mapping[str, str]) -> dict[str, InstanceInfo]:
        if not tags:
            raise ValueError("find needs at least one tag; an empty filter would select every instance")
        with self._lock:
            self._enter(call)
            return {
                i.id: i.info()
                for i in self._instances.values()
                if i.state not in GONE and all(i.tags.get(k) == v for k, v in tags.items())
            }

    def tagged_images(self, key: str, value: str | None = None) -> dict[str, dict[str, str]]:
        """This fake holds no images: a sweep finds none."""
        del key, value
        return {}

    def images_named(self, pattern: str) -> dict[str, str]:
        """This fake holds no images: a sweep by name finds none."""
        del pattern
        return {}

    def deregister_image(self, image: str) -> bool:
        del image
        return False

    def tagged(self, key: str) -> dict[str, InstanceInfo]:
        """Every live instance carrying tag ``key`` with any value, as ``Ec2Compute.tagged``."""
        with self._lock:
            self._enter("tagged")
            return {i.id: i.info() for i in self._instances.values() if i.state not in GONE and key in i.tags}

    def status_ok(self, ids: Sequence[str]) -> dict[str, bool]:
        with self._lock:
            self._enter("status_ok", ids)
            return {i.id: i.state == "running" for i in self._known(ids)}

    def wait(
        self, ids: Sequence[str], state: str, deadline: float, sleep: Callable[[float], bool] | None = None
    ) -> WaitResult:
        """States change at once here, so one look is the whole wait: nothing else could move them."""
        del deadline, sleep
        with self._lock:
            self._enter("wait", ids)
            infos = {i.id: i.info() for i in self._known(ids)}
        states = {i: info.state for i, info in infos.items()}
        return WaitResult(all(s == state for s in states.values()), states, 0.0, infos)
