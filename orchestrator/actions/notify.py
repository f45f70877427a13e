"""``notify``: send a message to a webhook (Slack-compatible JSON), or to the run log without one.

Not idempotent: a repeat sends the message again. That is tolerable (a duplicate message is noise, not
damage), which is why a failed webhook POST is still reported as transient and retried.
"""

from __future__ import annotations

from pydantic import Field

from orchestrator.actions.base import ActionContext, ActionParams, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.errors import Permanent
from orchestrator.runbook.fields import HttpUrlText
from orchestrator.webhook import post_text


class Params(ActionParams):
    """Webhook URLs are secrets in practice; write ``webhook: "${env.DR_WEBHOOK}"``."""

    message: str = Field(min_length=1)
    webhook: HttpUrlText | None = None


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("sends", f"a message to {p.webhook}" if p.webhook else "a message to the run log"),)


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Log the message into the run's events, and POST it as ``{"text": ...}`` when a webhook is given.

    Network errors and 5xx/429 answers raise ``Transient`` (the executor retries per the step's ``retry``);
    other 4xx answers are a misconfigured webhook and fail at once. The URL is never put in a message: webhook
    URLs carry their token in the path.
    """
    ctx.log(p.message)
    if p.webhook is None:
        return StepResult(StepStatus.SUCCEEDED)
    remaining = getattr(ctx, "remaining", lambda: None)()
    try:
        post_text(p.webhook, p.message, timeout=min(30.0, remaining or 30.0))
    except Permanent as err:
        return StepResult(StepStatus.FAILED, message=str(err))
    return StepResult(StepStatus.SUCCEEDED)


SPEC = ActionSpec(
    name="notify",
    params=Params,
    description="send a message to a webhook or the run log",
    touches=_touches,
    idempotent=False,
    run=run,
)
