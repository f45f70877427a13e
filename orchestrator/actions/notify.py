"""``notify``: send a message to a webhook (Slack-compatible JSON), or to the run log without one.

Not idempotent: a repeat sends the message again.
"""

from __future__ import annotations

from pydantic import Field

from orchestrator.actions.base import ActionParams, ActionSpec, Touch
from orchestrator.runbook.fields import HttpUrlText


class Params(ActionParams):
    """Webhook URLs are secrets in practice; write ``webhook: "${env.DR_WEBHOOK}"``."""

    message: str = Field(min_length=1)
    webhook: HttpUrlText | None = None


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("sends", f"a message to {p.webhook}" if p.webhook else "a message to the run log"),)


SPEC = ActionSpec(
    name="notify",
    params=Params,
    description="send a message to a webhook or the run log",
    touches=_touches,
    idempotent=False,
)
