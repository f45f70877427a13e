"""``backup.verify``: check a backup set for missing, extra and corrupt objects, as ``drctl backup verify``.

Idempotent: it only reads; running it twice reports the same thing twice.
"""

from __future__ import annotations

from pydantic import Field, StrictBool

from orchestrator.actions.base import ActionContext, ActionParams, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.backup.sets import open_set
from orchestrator.backup.verify import verify_set
from orchestrator.engine.context import key_source, store_factory
from orchestrator.runbook.fields import LocationText, Name


class Params(ActionParams):
    """``point`` limits the check to one recovery point; ``deep`` re-reads and hashes every byte."""

    set_: LocationText = Field(alias="set")
    point: str | None = None
    deep: StrictBool = False
    key_env: Name | None = None


def _touches(p: Params) -> tuple[Touch, ...]:
    what = f"recovery point {p.point}" if p.point else "every recovery point"
    return (Touch("reads", f"{p.set_} ({what}, {'every byte' if p.deep else 'presence and sizes'})"),)


def run(p: Params, ctx: ActionContext) -> StepResult:
    """What ``drctl backup verify`` does. A set with missing or corrupt objects fails the step (not
    retryable: re-reading will not repair it), with the counts in the message and ``ok`` false."""
    bset = open_set(store_factory(ctx).open(p.set_), key_source(p.key_env, ctx.env), ctx.env)
    report = verify_set(bset, [p.point] if p.point else None, deep=p.deep, cancelled=ctx.cancelled)
    outputs = {"points_checked": len(report.points), "objects_checked": report.objects_checked, "ok": report.ok}
    if not report.ok:
        message = f"{p.set_}: {len(report.missing)} missing, {len(report.corrupt)} corrupt objects"
        return StepResult(StepStatus.FAILED, outputs, message)
    return StepResult(StepStatus.SUCCEEDED, outputs)


SPEC = ActionSpec(
    name="backup.verify",
    params=Params,
    description="check a backup set: missing, extra and (with deep) corrupt objects",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"points_checked", "objects_checked", "ok"}),
    run=run,
)
