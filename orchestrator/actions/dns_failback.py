"""``dns.failback``: give a DNS name back to the primary endpoint, then wait until the change is INSYNC.

The mirror of ``dns.failover``: ``primary`` names the failover record (its set identifier) to make PRIMARY
again, or ``endpoint`` is the value a simple record is UPSERTed back to. Zone, name and type have no defaults.

Idempotent: for the same reason as ``dns.failover``: the end state is declared and a repeat that finds it in
effect submits nothing.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from orchestrator.actions.base import ActionContext, ActionSpec, StepResult
from orchestrator.actions.dns_failover import OUTPUTS, SwitchParams, switch, switch_touches


class Params(SwitchParams):
    """``primary`` (set identifier to make PRIMARY again) or ``endpoint`` (with ``ttl``, default 60)."""

    primary: str | None = Field(default=None, min_length=1)

    def target(self) -> str | None:
        return self.primary

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._one_target("primary")
        return self


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Make ``primary`` PRIMARY again (or point the record back at ``endpoint``) and wait for INSYNC.

    Idempotent because the step names the end state: when the primary record already holds the PRIMARY role
    (or the record already holds ``endpoint``), nothing is submitted and the step succeeds with ``changed``
    false; the role swap is one atomic change batch, so an interrupted attempt leaves the old or the new
    state, never a mix."""
    return switch(p, ctx)


SPEC = ActionSpec(
    name="dns.failback",
    params=Params,
    description="give a DNS name back to the primary endpoint (swap failover roles or UPSERT), wait for INSYNC",
    touches=switch_touches,
    idempotent=True,
    outputs=OUTPUTS,
    run=run,
)
