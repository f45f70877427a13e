"""Every action by name. Adding one is a module with ``Params`` and ``SPEC`` and a line in ``ACTION_MODULES``;
nothing dispatches on names anywhere else."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any

from orchestrator.actions import (
    backup_copy,
    backup_restore,
    backup_verify,
    compute_launch,
    compute_start,
    compute_stop,
    compute_terminate,
    compute_wait_healthy,
    db_check,
    db_restore,
    dns_failback,
    dns_failover,
    http_check,
    image_ensure,
    notify,
    shell,
    wait,
)
from orchestrator.actions.base import ActionSpec

ACTION_MODULES: tuple[ModuleType, ...] = (
    backup_copy,
    backup_verify,
    backup_restore,
    wait,
    http_check,
    shell,
    notify,
    image_ensure,
    compute_launch,
    compute_start,
    compute_stop,
    compute_terminate,
    compute_wait_healthy,
    dns_failover,
    dns_failback,
    db_restore,
    db_check,
)


class ActionRegistry:
    """Actions by name; a name registered twice is a programming error caught at import."""

    def __init__(self, specs: Iterable[ActionSpec[Any]]) -> None:
        self._specs: dict[str, ActionSpec[Any]] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"action {spec.name!r} is registered twice")
            self._specs[spec.name] = spec

    def get(self, name: str) -> ActionSpec[Any] | None:
        return self._specs.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._specs))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ActionSpec[Any]]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)


def _spec_of(module: ModuleType) -> ActionSpec[Any]:
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, ActionSpec):
        raise TypeError(f"{module.__name__} declares no SPEC = ActionSpec(...)")
    return spec


REGISTRY = ActionRegistry(_spec_of(m) for m in ACTION_MODULES)
