"""``backup.copy``: copy a source into a backup set as a new recovery point, as ``drctl backup copy`` does.

Idempotent: the copy journal records every object once it is verified in the set, so a repeat after an
interruption or a timeout resumes rather than re-sends; a repeat after success adds a recovery point that
shares all of its data with the previous one and changes nothing else.

With ``shards: N`` the copy runs as N shards side by side on this machine (the local engine: one thread
pool per shard, as ``drctl backup copy --shard I/N`` would run in N pods), then seals them into one point.
The shard group is the run's, so a repeat of the step keeps the shards that finished and reruns the rest.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import Field, StrictBool, StrictInt, field_validator

from orchestrator.actions.base import ActionContext, ActionParams, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.backup.copy import CopyOptions, CopyResult, Filters, execute_copy, plan_copy
from orchestrator.backup.journal import CopyJournal, state_dir
from orchestrator.backup.manifest import Mode, RecoveryPoint
from orchestrator.backup.pipeline import parse_rate
from orchestrator.backup.recipients import check_recipients
from orchestrator.backup.seal import seal_shards
from orchestrator.backup.sets import BackupSet, NewSetOptions, open_or_create_set
from orchestrator.backup.shards import SHARDS_PREFIX, Shard, check_group
from orchestrator.engine.context import key_source, store_factory
from orchestrator.errors import DrError, InvalidInput, Transient
from orchestrator.providers.base import ObjectStore
from orchestrator.runbook.fields import LocationText, Name, drctl_error
from orchestrator.runbook.interpolate import has_references

# Each local shard runs its own pool of ``transfers`` threads; past a few dozen, one machine gains nothing.
LOCAL_SHARDS_MAX = 64


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
    shards: StrictInt | None = Field(default=None, ge=1, le=LOCAL_SHARDS_MAX)
    """Run the copy as this many shards in parallel on this machine, then seal them into one recovery point.
    More shards than this belong on a batch engine (``drctl backup copy --shard``, docs/sharding.md)."""

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
    journal = CopyJournal(state_dir(ctx.env) / "journal.sqlite")
    try:
        if p.shards is None:
            result = execute_copy(plan_copy(source, bset, options), source, bset, options, journal)
            point, transferred, skipped, sent = (
                result.recovery_point,
                result.objects_transferred,
                result.objects_skipped,
                result.bytes_transferred,
            )
        else:
            group = _group_of(ctx)
            results = _run_shards(source, bset, options, journal, p.shards, group)
            sealed = _seal_or_start_over(bset, p.shards, group)
            point = sealed.id
            transferred = sum(r.objects_transferred for r in results)
            skipped = sealed.totals.objects - transferred
            sent = sum(r.bytes_transferred for r in results)
    finally:
        journal.close()
    shards = f" by {p.shards} shards" if p.shards else ""
    ctx.log(f"recovery point {point}: {transferred} objects transferred{shards}")
    return StepResult(
        StepStatus.SUCCEEDED,
        {
            "recovery_point": point,
            "objects_transferred": transferred,
            "objects_skipped": skipped,
            "bytes_transferred": sent,
        },
    )


def _seal_or_start_over(bset: BackupSet, count: int, group: str) -> RecoveryPoint:
    """Seal the step's shards. A refusal that names a shard (data lost, a manifest damaged, the base point
    pruned) leaves nothing a later attempt of this step could seal, and a resumed run keeps the step's group:
    so its shard manifests go, and the next attempt copies every shard again (resuming where it can)."""
    try:
        return seal_shards(bset, count, group, datetime.now(UTC)).point
    except Transient:
        raise
    except DrError as exc:
        for info in list(bset.store.list(f"{SHARDS_PREFIX}{group}/")):
            bset.store.delete(info.key)
        raise type(exc)(f"{exc}; this step's shard manifests were removed: resume the run to copy them again") from exc


def _group_of(ctx: ActionContext) -> str:
    # One group per run and step: a repeat of the step finds its own finished shards, another run never does.
    raw = f"{ctx.run_id or 'run'}-{ctx.step_id}"
    return check_group(re.sub(r"[^A-Za-z0-9._-]", "-", raw).strip("-._")[:128] or "run")


def _run_shards(
    source: ObjectStore,
    bset: BackupSet,
    options: CopyOptions,
    journal: CopyJournal,
    count: int,
    group: str,
) -> list[CopyResult]:
    """Every shard not already finished in this group, side by side. A failed shard does not stop the others:
    each one that finishes is a part a repeat need not copy again. The first failure is raised after all."""
    done = {info.key for info in bset.store.list(f"{SHARDS_PREFIX}{group}/")}

    def one(index: int) -> CopyResult | None:
        shard = Shard(index, count, group)
        if shard.manifest_key in done:
            return None
        sharded = replace(options, shard=shard)
        return execute_copy(plan_copy(source, bset, sharded), source, bset, sharded, journal)

    with ThreadPoolExecutor(count, thread_name_prefix="shard") as pool:
        futures = [pool.submit(one, i) for i in range(count)]
        wait(futures)
    for future in futures:
        future.result()  # the first failure, in shard order
    return [r for f in futures if (r := f.result()) is not None]


SPEC = ActionSpec(
    name="backup.copy",
    params=Params,
    description="copy a source into a backup set as a new recovery point, every object verified",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"recovery_point", "objects_transferred", "objects_skipped", "bytes_transferred"}),
    run=run,
)
