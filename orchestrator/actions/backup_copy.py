"""``backup.copy``: copy a source into a backup set as a new recovery point, as ``drctl backup copy`` does.

Idempotent: the copy journal records every object once it is verified in the set, so a repeat after an
interruption or a timeout resumes rather than re-sends; a repeat after success adds a recovery point that
shares all of its data with the previous one and changes nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field, StrictBool, StrictInt, field_validator

from orchestrator.actions.base import ActionContext, ActionParams, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.backup.copy import CopyOptions, Filters, execute_copy, plan_copy
from orchestrator.backup.journal import CopyJournal, state_dir
from orchestrator.backup.manifest import Mode
from orchestrator.backup.pipeline import parse_rate
from orchestrator.backup.recipients import check_recipients
from orchestrator.backup.sets import NewSetOptions, open_or_create_set
from orchestrator.engine.context import key_source, store_factory
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
    recipients: tuple[str, ...] = ()
    """age recipients a new set's data is sealed to (implies ``encrypt``; the set's key is still needed)."""
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


def run(p: Params, ctx: ActionContext) -> StepResult:
    """What ``drctl backup copy`` does: plan against the set, create it if needed, copy under the copy journal
    in the state directory. Engine errors (``Transient`` included) propagate so the executor classifies and
    retries them. The engine polls ``ctx.cancelled()`` between objects and chunks, so a step that times out
    (or a run interrupted) stops its copy unsealed; the journal makes the next attempt resume."""
    options = CopyOptions(
        mode=p.mode,
        filters=Filters(p.include, p.exclude),
        transfers=p.transfers,
        bwlimit=parse_rate(p.bwlimit) if p.bwlimit else None,
        cancelled=ctx.cancelled,
    )
    keys = key_source(p.key_env, ctx.env)
    recipients = check_recipients(p.recipients)
    encrypt = p.encrypt or bool(recipients)
    if encrypt and not keys.given:
        raise InvalidInput(f"encrypt needs a key: set key_env, or {keys.key_env or 'DRCTL_BACKUP_KEY'}")
    factory = store_factory(ctx)
    source, dest = factory.open(p.from_), factory.open(p.to)
    new_set = NewSetOptions(compression=p.compress, encryption=encrypt, recipients=recipients)
    bset = open_or_create_set(dest, keys, ctx.env, new_set, datetime.now(UTC))
    assert bset is not None  # create=True (the default) always returns a set
    plan = plan_copy(source, bset, options)
    journal = CopyJournal(state_dir(ctx.env) / "journal.sqlite")
    try:
        result = execute_copy(plan, source, bset, options, journal)
    finally:
        journal.close()
    ctx.log(f"recovery point {result.recovery_point}: {result.objects_transferred} objects transferred")
    return StepResult(
        StepStatus.SUCCEEDED,
        {
            "recovery_point": result.recovery_point,
            "objects_transferred": result.objects_transferred,
            "objects_skipped": result.objects_skipped,
            "bytes_transferred": result.bytes_transferred,
        },
    )


SPEC = ActionSpec(
    name="backup.copy",
    params=Params,
    description="copy a source into a backup set as a new recovery point, every object verified",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"recovery_point", "objects_transferred", "objects_skipped", "bytes_transferred"}),
    run=run,
)
