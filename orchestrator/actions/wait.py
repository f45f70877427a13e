"""``wait``: pause for a fixed time, or until an HTTP endpoint or a TCP port answers.

Idempotent: it changes nothing; a repeat only waits again.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Self

from pydantic import Field, StrictInt, model_validator

from orchestrator.actions.base import ActionContext, ActionParams, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.engine.context import pause
from orchestrator.runbook.fields import Duration, HostPortText, HttpUrlText, Strict, drctl_error, format_duration


class Until(Strict):
    """One condition: ``http`` answers ``expect_status``, or ``tcp`` (HOST:PORT) accepts a connection."""

    context_phrase = "in 'until'"

    http: HttpUrlText | None = None
    tcp: HostPortText | None = None
    expect_status: StrictInt = Field(default=200, ge=100, le=599)

    @model_validator(mode="after")
    def _one_condition(self) -> Self:
        if (self.http is None) == (self.tcp is None):
            raise drctl_error("give one of 'http' or 'tcp'")
        return self

    def __str__(self) -> str:
        return f"{self.http} answers {self.expect_status}" if self.http else f"{self.tcp} accepts connections"


class Params(ActionParams):
    """Either ``duration``, or ``until`` with a ``timeout`` (polled every ``interval``)."""

    duration: Duration | None = None
    until: Until | None = None
    timeout: Duration | None = None
    interval: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _duration_or_until(self) -> Self:
        if (self.duration is None) == (self.until is None):
            raise drctl_error("give either 'duration' or 'until'")
        if self.until is not None and self.timeout is None:
            raise drctl_error("'until' needs a 'timeout', so a condition that never holds cannot wait forever")
        if self.duration is not None and self.timeout is not None:
            raise drctl_error("'timeout' only applies to 'until'")
        return self


def _touches(p: Params) -> tuple[Touch, ...]:
    if p.duration is not None:
        return (Touch("waits", format_duration(p.duration)),)
    assert p.timeout is not None  # enforced by the model
    return (Touch("waits", f"until {p.until} (at most {format_duration(p.timeout)})"),)


def _holds(until: Until) -> bool:
    if until.http is not None:
        try:
            with urllib.request.urlopen(until.http, timeout=5) as response:  # noqa: S310 - checked http(s) URL
                status = int(response.status)
        except urllib.error.HTTPError as err:
            status = err.code
        except (OSError, ValueError):
            return False
        return status == until.expect_status
    assert until.tcp is not None  # enforced by the model
    host, _, port = until.tcp.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            return True
    except OSError:
        return False


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Pause, or poll the condition every ``interval`` until it holds or ``timeout`` passes. Waking early on
    Ctrl-C or the step's deadline is what ``pause`` gives us; a condition never met is a timeout."""
    started = time.monotonic()
    if p.duration is not None:
        if not pause(ctx, p.duration.total_seconds()):
            return StepResult(StepStatus.TIMED_OUT, {"waited_s": round(time.monotonic() - started, 3)}, "stopped")
        return StepResult(StepStatus.SUCCEEDED, {"waited_s": p.duration.total_seconds()})
    assert p.until is not None  # enforced by the model
    assert p.timeout is not None
    waited = 0.0
    while True:
        if _holds(p.until):
            return StepResult(StepStatus.SUCCEEDED, {"waited_s": round(waited, 3)})
        if waited >= p.timeout.total_seconds() or ctx.cancelled():
            return StepResult(
                StepStatus.TIMED_OUT, message=f"{p.until} did not hold within {format_duration(p.timeout)}"
            )
        step = min(p.interval.total_seconds(), p.timeout.total_seconds() - waited)
        if not pause(ctx, step):
            return StepResult(StepStatus.TIMED_OUT, message=f"stopped waiting until {p.until}")
        waited += step


SPEC = ActionSpec(
    name="wait",
    params=Params,
    description="wait for a fixed time, or until an http endpoint or tcp port answers",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"waited_s"}),
    run=run,
)
