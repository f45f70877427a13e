"""The check loop ``http.check`` and ``db.check`` share: ask, and ask again every ``interval`` until the
answer passes or ``timeout`` is spent (once without ``interval``).

A check that never passes fails with its last problem and is not retryable: the polling already was the
retry. Cancelling the run stops the wait at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta

from orchestrator.actions.base import ActionContext, OutputValue, StepResult, StepStatus
from orchestrator.engine.context import pause

Attempt = Callable[[float], tuple[Mapping[str, OutputValue], str]]
"""One try, given the seconds left: the outputs it saw and why it did not pass ("" when it did)."""


def poll_until_passed(
    ctx: ActionContext, interval: timedelta | None, timeout: timedelta, attempt: Attempt
) -> StepResult:
    started = time.monotonic()
    budget = timeout.total_seconds()
    while True:
        outputs, problem = attempt(budget - (time.monotonic() - started))
        if not problem:
            return StepResult(StepStatus.SUCCEEDED, outputs)
        ctx.log(problem)
        left = budget - (time.monotonic() - started)
        if interval is None or left <= 0 or ctx.cancelled():
            return StepResult(StepStatus.FAILED, outputs, problem)
        if not pause(ctx, min(interval.total_seconds(), left)):
            return StepResult(StepStatus.FAILED, outputs, f"{problem} (stopped waiting)")
