"""``http.check``: GET a URL and expect a status (and optionally a text in the body), retrying every
``interval`` until ``timeout``.

Idempotent: it only sends GET requests, which change nothing on a well-behaved server.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, StrictInt

from orchestrator.actions.base import ActionParams, ActionSpec, Touch
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


SPEC = ActionSpec(
    name="http.check",
    params=Params,
    description="GET a URL until it answers with the expected status (and body text)",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"status", "elapsed_ms"}),
)
