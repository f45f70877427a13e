"""Tenacity retry policies, always explicit: a bounded number of attempts, jittered backoff, and retries
only for errors classed as ``Transient``. The SDKs' own retries are switched off in the providers so that the
two never stack (3 botocore attempts x 5 of ours would be 15 calls and minutes of waiting)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_any,
    wait_exponential,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from orchestrator.errors import DrError, Throttled, Transient

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How a provider call is retried. ``attempts`` counts the first call; ``max_seconds`` bounds the total."""

    attempts: int = 5
    initial_wait_s: float = 0.2
    max_wait_s: float = 5.0
    max_seconds: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    throttled_attempts: int | None = None
    """Attempts while the service says ``Throttled`` (None: ``attempts``). A throttling service answers as its
    bucket refills, and on the day a region fails every account is launching: more attempts, same budget."""

    def retrying(self) -> Retrying:
        return Retrying(
            stop=stop_any(_AttemptsByKind(self.attempts, self.throttled_attempts), stop_after_delay(self.max_seconds)),
            wait=_WaitByKind(self.initial_wait_s, self.max_wait_s),
            retry=retry_if_exception_type(Transient),
            sleep=self.sleep,
            reraise=True,
        )

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` under this policy; the last error is re-raised unchanged when attempts run out."""
        return self.retrying()(fn)

    def call_translating(
        self,
        fn: Callable[[], T],
        sdk_errors: tuple[type[Exception], ...],
        translate: Callable[[Exception], DrError],
    ) -> T:
        """``call`` for a provider: each SDK error is translated at the boundary first, so the policy can tell
        a ``Transient`` one (retried) from the rest (raised at once)."""

        def attempt() -> T:
            try:
                return fn()
            except sdk_errors as exc:
                raise translate(exc) from exc

        return self.call(attempt)


class _WaitByKind(wait_base):
    """Full jitter (a wait anywhere up to the doubling bound) for most errors; "equal jitter" (at least half the
    bound) while the service says ``Throttled``. Full jitter can draw a dozen short waits in a row, and a
    throttled launch then spends its attempts in seconds while the bucket needs tens of seconds to refill (EC2's
    RunInstances bucket refills at 2 instances a second: 25 s for a tier of 50). Half the bound still spreads
    the clients of one region apart, as AWS's backoff guidance intends."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.full = wait_random_exponential(multiplier=initial_s, max=max_s)
        self.equal = wait_exponential(multiplier=initial_s / 2, max=max_s / 2) + wait_random_exponential(
            multiplier=initial_s / 2, max=max_s / 2
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        return float((self.equal if _throttled(retry_state) else self.full)(retry_state))


class _AttemptsByKind(stop_base):
    """Stop after ``attempts``, or after ``throttled`` while the last error was ``Throttled``."""

    def __init__(self, attempts: int, throttled: int | None) -> None:
        self.attempts = attempts
        self.throttled = throttled if throttled is not None else attempts

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.attempt_number >= (self.throttled if _throttled(retry_state) else self.attempts)


def _throttled(retry_state: RetryCallState) -> bool:
    """Whether the last attempt failed because the service is throttling."""
    outcome = retry_state.outcome
    return outcome is not None and isinstance(outcome.exception(), Throttled)


NO_RETRY = RetryPolicy(attempts=1)
