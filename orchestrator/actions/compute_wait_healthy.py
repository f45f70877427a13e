"""``compute.wait_healthy``: wait until the selected instances are running, pass their status checks and,
optionally, accept TCP connections on a port or answer an HTTP URL.

Idempotent: it changes nothing; a repeat only polls again.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from datetime import timedelta

from pydantic import Field, StrictBool, StrictInt

from orchestrator.actions.base import ActionContext, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.actions.compute_start import OUTPUTS, Selection, addresses_of, compute_of, select, wait_outputs
from orchestrator.engine.context import pause
from orchestrator.providers.compute import Compute, InstanceInfo, WaitResult
from orchestrator.runbook.fields import Duration, HttpUrlText, format_duration

PROBE_TIMEOUT_S = 5


class Params(Selection):
    """The selection; ``tcp_port`` probes each instance's address (``public_ip`` or private); ``http`` is one
    URL (a load balancer, a health endpoint) that must answer ``expect_status``; ``status_checks`` can be
    turned off where the provider reports none."""

    status_checks: StrictBool = True
    tcp_port: StrictInt | None = Field(default=None, ge=1, le=65535)
    public_ip: StrictBool = False
    http: HttpUrlText | None = None
    expect_status: StrictInt = Field(default=200, ge=100, le=599)
    timeout: Duration = timedelta(minutes=10)
    interval: Duration = timedelta(seconds=10)


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("waits", f"until {p.describe()} are healthy (at most {format_duration(p.timeout)})"),)


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def http_answers(url: str, expect_status: int) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:  # noqa: S310 - checked http(s) URL
            status = int(response.status)
    except urllib.error.HTTPError as err:
        status = err.code
    except (OSError, ValueError):
        return False
    return status == expect_status


def _unhealthy(p: Params, compute: Compute, ids: tuple[str, ...]) -> tuple[dict[str, InstanceInfo], list[str]]:
    """The instances' info and the reasons they are not healthy yet (empty when all are)."""
    infos = compute.describe(ids)
    reasons = [f"{i} is {info.state}" for i, info in infos.items() if info.state != "running"]
    if reasons:
        return infos, reasons
    if p.status_checks:
        reasons = [f"{i} status checks not ok" for i, ok in compute.status_ok(ids).items() if not ok]
    if not reasons and p.tcp_port is not None:
        for i, info in infos.items():
            address = info.public_ip if p.public_ip else info.private_ip
            if address is None or not tcp_open(address, p.tcp_port):
                reasons.append(f"{i} ({address or 'no address'}) refuses port {p.tcp_port}")
    if not reasons and p.http is not None and not http_answers(p.http, p.expect_status):
        reasons.append(f"{p.http} does not answer {p.expect_status}")
    return infos, reasons


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Poll every ``interval`` until healthy or ``timeout`` (or the step's deadline). Idempotent because it
    only reads."""
    started = time.monotonic()
    compute = compute_of(p, ctx)
    ids = select(p, compute, ctx)
    limit = started + p.timeout.total_seconds()
    if ctx.deadline is not None:
        limit = min(limit, ctx.deadline)
    while True:
        infos, reasons = _unhealthy(p, compute, ids)
        now = time.monotonic()
        seen = WaitResult(not reasons, {i: info.state for i, info in infos.items()}, round(now - started, 3), infos)
        outputs = wait_outputs(ids, seen, started, addresses_of(seen, ids))
        if not reasons:
            return StepResult(StepStatus.SUCCEEDED, outputs)
        if now >= limit or not pause(ctx, min(p.interval.total_seconds(), max(0.0, limit - now))):
            message = f"{p.describe()} not healthy within {format_duration(p.timeout)}: {'; '.join(reasons[:5])}"
            return StepResult(StepStatus.TIMED_OUT, outputs, message, retryable=True)


SPEC = ActionSpec(
    name="compute.wait_healthy",
    params=Params,
    description="wait until instances run, pass status checks and optionally answer on tcp or http",
    touches=_touches,
    idempotent=True,
    outputs=OUTPUTS,
    run=run,
)
