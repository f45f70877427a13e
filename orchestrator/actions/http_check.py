"""``http.check``: GET a URL and expect a status (and optionally a text in the body), retrying every
``interval`` until ``timeout``.

Idempotent: it only sends GET requests, which change nothing on a well-behaved server.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import timedelta

from pydantic import Field, StrictInt

from orchestrator.actions.base import ActionContext, ActionParams, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.engine.context import pause
from orchestrator.runbook.fields import Duration, HttpUrlText


class Params(ActionParams):
    """Without ``interval`` one request is made; with it, requests repeat until one passes or time is up."""

    url: HttpUrlText
    expect_status: StrictInt = Field(default=200, ge=100, le=599)
    expect_body: str | None = None
    interval: Duration | None = None
    timeout: Duration = timedelta(seconds=30)


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("calls", f"GET {p.url} (expects {p.expect_status})"),)


def _probe(p: Params, limit: float) -> tuple[int | None, str]:
    """One GET: the status (None when nothing answered) and why it did not pass ("" when it did)."""
    try:
        with urllib.request.urlopen(p.url, timeout=max(0.1, limit)) as response:  # noqa: S310 - http(s) only
            status, body = int(response.status), response.read(1 << 20).decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        status, body = err.code, ""
    except (OSError, ValueError) as err:
        return None, f"no answer ({type(err).__name__})"
    if status != p.expect_status:
        return status, f"answered {status}, expected {p.expect_status}"
    if p.expect_body is not None and p.expect_body not in body:
        return status, f"answered {status} without the expected text in the body"
    return status, ""


def run(p: Params, ctx: ActionContext) -> StepResult:
    """GET until the answer passes, every ``interval`` up to ``timeout`` (one request without ``interval``).
    A check that never passes fails with the last reason, not retryable: the polling already was the retry."""
    started = time.monotonic()
    budget = p.timeout.total_seconds()
    while True:
        elapsed = time.monotonic() - started
        status, problem = _probe(p, budget - elapsed)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        outputs = {"status": status or 0, "elapsed_ms": elapsed_ms}
        if not problem:
            return StepResult(StepStatus.SUCCEEDED, outputs)
        ctx.log(f"GET {p.url}: {problem}")
        left = budget - (time.monotonic() - started)
        if p.interval is None or left <= 0 or ctx.cancelled():
            return StepResult(StepStatus.FAILED, outputs, f"GET {p.url}: {problem}")
        if not pause(ctx, min(p.interval.total_seconds(), left)):
            return StepResult(StepStatus.FAILED, outputs, f"GET {p.url}: {problem} (stopped waiting)")


SPEC = ActionSpec(
    name="http.check",
    params=Params,
    description="GET a URL until it answers with the expected status (and body text)",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"status", "elapsed_ms"}),
    run=run,
)
