"""``backup.verify``: check a backup set for missing, extra and corrupt objects, as ``drctl backup verify``.

Idempotent: it only reads; running it twice reports the same thing twice.
"""

from __future__ import annotations

from pydantic import Field, StrictBool

from orchestrator.actions.base import ActionParams, ActionSpec, Touch
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


SPEC = ActionSpec(
    name="backup.verify",
    params=Params,
    description="check a backup set: missing, extra and (with deep) corrupt objects",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"points_checked", "objects_checked", "ok"}),
)
