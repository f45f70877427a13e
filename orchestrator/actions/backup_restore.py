"""``backup.restore``: materialise a recovery point into a target, as ``drctl backup restore``.

Idempotent: every object is written to the same key with the same verified bytes, so a repeat (after an
interruption or not) leaves the target as one complete restore would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Self

from pydantic import Field, field_validator, model_validator

from orchestrator.actions.base import (
    ActionContext,
    ActionParams,
    ActionSpec,
    OutputValue,
    StepResult,
    StepStatus,
    Touch,
)
from orchestrator.backup.copy import Filters
from orchestrator.backup.restore import choose_point, restore_point
from orchestrator.backup.sets import open_set
from orchestrator.engine.context import key_source, store_factory
from orchestrator.errors import Permanent
from orchestrator.protect.status import read_status
from orchestrator.providers.location import parse_location
from orchestrator.runbook.fields import LocationText, Name, drctl_error


class Params(ActionParams):
    """``point`` names a recovery point; ``at`` picks the newest point taken at or before that time; with
    neither, the latest point is restored."""

    set_: LocationText = Field(alias="set")
    target: LocationText
    point: str | None = None
    at: datetime | None = None
    include: tuple[str, ...] = ()
    key_env: Name | None = None

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # As on the command line: a time without a zone is UTC, never the local zone of whoever runs it.
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _one_choice(self) -> Self:
        if self.point is not None and self.at is not None:
            raise drctl_error("give 'point' or 'at', not both")
        return self


def _touches(p: Params) -> tuple[Touch, ...]:
    which = p.point or (f"the newest point at or before {p.at.isoformat()}" if p.at else "the latest point")
    return Touch("reads", f"{p.set_} ({which})"), Touch("writes", p.target)


def _drill_target(target: str, ctx: ActionContext) -> None:
    """A drill restores only into a place of its own, which its cleanup then empties; a target without the run
    id could be production data, and the cleanup would delete it."""
    assert ctx.drill is not None
    if ctx.drill.run_id not in target:
        raise Permanent(
            f"a drill restores only into a location of its own, and {target} does not contain the run id: "
            "write the target with ${run.id} in it (e.g. .../drills/${run.id}/)"
        )
    root = parse_location(target)
    ctx.drill.record("objects", f"{root.scheme}://{root.root}", target, {})


def run(p: Params, ctx: ActionContext) -> StepResult:
    """What ``drctl backup restore`` does: choose the point (``point``, ``at`` or the latest), restore it
    with every object verified. ``point_created`` is ISO 8601 text so later steps can interpolate it."""
    if ctx.drill is not None:
        _drill_target(p.target, ctx)
    factory = store_factory(ctx)
    bset = open_set(factory.open(p.set_), key_source(p.key_env, ctx.env), ctx.env)
    point = choose_point(bset, p.point, p.at)
    result = restore_point(bset, point, factory.open(p.target), Filters(p.include, ()), cancelled=ctx.cancelled)
    protected = read_status(bset.store)
    kept: dict[str, OutputValue] = {}
    if protected is not None and protected.source == point.source:
        # The set was kept by drctl protect: the report says how close to the disaster it was last in sync.
        kept = {"protected_rpo_s": protected.rpo_s, "protected_in_sync_at": protected.synced_at}
    return StepResult(
        StepStatus.SUCCEEDED,
        {
            **kept,
            "recovery_point": result.recovery_point,
            "point_created": result.point_created.isoformat(),
            # When the point's source was read: the data is at least this old, which is what RPO measures.
            "point_started": result.point_started.isoformat(),
            "objects_restored": result.objects_restored,
            "bytes_restored": result.bytes_restored,
        },
    )


SPEC = ActionSpec(
    name="backup.restore",
    params=Params,
    description="restore a recovery point of a backup set into a target, every object verified",
    touches=_touches,
    idempotent=True,
    outputs=frozenset(
        {
            "recovery_point",
            "point_started",
            "point_created",
            "objects_restored",
            "bytes_restored",
            "protected_rpo_s",
            "protected_in_sync_at",
        }
    ),
    run=run,
)
