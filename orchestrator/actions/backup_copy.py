"""``backup.copy``: copy a source into a backup set as a new recovery point, as ``drctl backup copy`` does.

Idempotent: the copy journal records every object once it is verified in the set, so a repeat after an
interruption or a timeout resumes rather than re-sends; a repeat after success adds a recovery point that
shares all of its data with the previous one and changes nothing else.
"""

from __future__ import annotations

from pydantic import Field, StrictBool, StrictInt, field_validator

from orchestrator.actions.base import ActionParams, ActionSpec, Touch
from orchestrator.backup.manifest import Mode
from orchestrator.backup.pipeline import parse_rate
from orchestrator.errors import InvalidInput
from orchestrator.runbook.fields import LocationText, Name, drctl_error
from orchestrator.runbook.interpolate import has_references


class Params(ActionParams):
    """The options of ``drctl backup copy`` as keys; ``key_env`` names the variable holding the key."""

    from_: LocationText = Field(alias="from")
    to: LocationText
    mode: Mode = "incremental"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    transfers: StrictInt = Field(default=8, ge=1, le=256)
    bwlimit: str | None = None
    compress: StrictBool = False
    encrypt: StrictBool = False
    key_env: Name | None = None

    @field_validator("bwlimit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None and not has_references(value):
            try:
                parse_rate(value)
            except InvalidInput as err:
                raise drctl_error(str(err).removeprefix("--bwlimit ")) from None
        return value


def _touches(p: Params) -> tuple[Touch, ...]:
    return Touch("reads", p.from_), Touch("writes", f"{p.to} (a new {p.mode} recovery point)")


SPEC = ActionSpec(
    name="backup.copy",
    params=Params,
    description="copy a source into a backup set as a new recovery point, every object verified",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"recovery_point", "objects_transferred", "objects_skipped", "bytes_transferred"}),
)
