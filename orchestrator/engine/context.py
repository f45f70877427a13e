"""The ``ActionContext`` the executor hands to each attempt of a step."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator.actions.base import ActionContext, RunMode
from orchestrator.actions.lookahead import SelectionLookahead
from orchestrator.backup.crypto import KeySource
from orchestrator.drill.scope import DrillScope
from orchestrator.providers.factory import StoreFactory
from orchestrator.stack_outputs import StackOutputs

DEFAULT_KEY_ENV = "DRCTL_BACKUP_KEY"
StoreFactoryMaker = Callable[[Mapping[str, str]], StoreFactory]


def default_store_factory(env: Mapping[str, str]) -> StoreFactory:
    return StoreFactory(dict(env))


@dataclass(frozen=True)
class StepContext:
    """One attempt's view of the run. ``cancelled()`` turns true when the run is interrupted or the attempt's
    deadline passes: threads cannot be killed, so an action's only way to stop on time is to poll it (or to
    ``pause``, which wakes as soon as the run is interrupted)."""

    step_id: str
    mode: RunMode
    env: Mapping[str, str]
    stack: StackOutputs | None
    deadline: float | None
    stop: threading.Event
    clock: Callable[[], float]
    sink: Callable[[str], None]
    sleep: Callable[[float], None] = time.sleep
    store_factory: StoreFactoryMaker = default_store_factory
    run_id: str = ""
    drill: DrillScope | None = None
    lookahead: SelectionLookahead | None = None

    def cancelled(self) -> bool:
        return self.stop.is_set() or (self.deadline is not None and self.clock() >= self.deadline)

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - self.clock())

    def log(self, message: str) -> None:
        self.sink(message)

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` or until cancelled, whichever is first; True if the full time passed."""
        remaining = self.remaining()
        if remaining is not None and remaining < seconds:
            self.sleep(remaining)
            return False
        if self.sleep is time.sleep:
            return not self.stop.wait(seconds)  # an Event wait wakes at once on Ctrl-C, unlike time.sleep
        self.sleep(seconds)
        return not self.cancelled()


def pause(ctx: ActionContext, seconds: float) -> bool:
    """``StepContext.pause`` for any context; a plain context sleeps in short slices polling ``cancelled``."""
    if isinstance(ctx, StepContext):
        return ctx.pause(seconds)
    end = time.monotonic() + seconds
    while not ctx.cancelled():
        left = end - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.2))
    return False


def lookahead_of(ctx: ActionContext) -> SelectionLookahead | None:
    """The run's lookups ahead; None outside a run (a plain context, as unit tests of actions pass)."""
    return ctx.lookahead if isinstance(ctx, StepContext) else None


def store_factory(ctx: ActionContext) -> StoreFactory:
    """The run's store factory (tests pass one in), else one built from the step's environment as
    ``drctl backup`` builds it."""
    maker = ctx.store_factory if isinstance(ctx, StepContext) else default_store_factory
    return maker(ctx.env)


def key_source(key_env: str | None, env: Mapping[str, str]) -> KeySource:
    """As ``drctl backup``: the named variable, else ``DRCTL_BACKUP_KEY`` when it is set, else no key."""
    if key_env:
        return KeySource(key_env=key_env)
    return KeySource(key_env=DEFAULT_KEY_ENV if env.get(DEFAULT_KEY_ENV) else None)
