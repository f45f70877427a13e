"""``backup.restore``: materialise a recovery point into a target, as ``drctl backup restore``.

Idempotent: every object is written to the same key with the same verified bytes, so a repeat (after an
interruption or not) leaves the target as one complete restore would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Self

from pydantic import Field, field_validator, model_validator

from orchestrator.actions.base import ActionParams, ActionSpec, Touch
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


SPEC = ActionSpec(
    name="backup.restore",
    params=Params,
    description="restore a recovery point of a backup set into a target, every object verified",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"recovery_point", "point_created", "objects_restored", "bytes_restored"}),
)
