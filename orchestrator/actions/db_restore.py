"""``db.restore``: restore a PostgreSQL dump (``pg_dump -Fc``) held in a backup set into a database.

The dump is one object of a recovery point, chosen as ``backup.restore`` chooses (``point``, ``at`` or the
latest, by ``orchestrator.backup.restore.choose_point``). It is read through the same verified path a restore
uses (``read_verified``: decrypted, decompressed, size and SHA-256 checked against the manifest) into a private
temporary file, and pg_restore runs only once every byte verified: a damaged object fails the step before
anything touches the database. pg_restore runs with ``--single-transaction --no-owner --exit-on-error`` (and
``--clean --if-exists`` when ``clean``), so a failed restore leaves the database as it was.

Idempotent: with ``clean`` (the default) pg_restore first drops every object the dump holds, if it exists, then
recreates them, all in one transaction: a repeat after an interruption, a timeout or even success leaves the
database as one restore would, and an interrupted attempt committed nothing. With ``clean: false`` a repeat
after success fails on the objects that already exist, and rolls back, so it still changes nothing. ``jobs`` > 1
restores in parallel with ``-j``, which pg_restore cannot combine with ``--single-transaction``: an interrupted
parallel restore leaves part of the dump behind, so it needs ``clean`` (checked when the runbook is loaded),
which makes the next attempt drop and recreate those parts.

In a drill (``ctx.drill`` set) the database must belong to the drill: the DSN's host must be the private IP of a
live instance this drill launched. The instances are looked up in the cloud by the drill's run-id tag (the same
tag ``compute.start``'s ``guard_drill`` checks), in ``cloud``/``region``/``resource_group`` as the compute
actions take them. The cloud is asked rather than the step trusted because the DSN is text a runbook (or an
earlier step's output) supplies, and only the cloud knows which addresses are the drill's right now; a host
name is refused, since what it resolves to is not the drill's to decide.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator

from orchestrator.actions.base import ActionContext, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.actions.compute_start import compute_in, deadline_of
from orchestrator.actions.pg_target import PgTarget, PgTargetParams, classify, connect, is_ip
from orchestrator.backup.manifest import ObjectEntry, RecoveryPoint
from orchestrator.backup.restore import choose_point
from orchestrator.backup.sets import BackupSet, open_set
from orchestrator.backup.verify import read_verified
from orchestrator.engine.context import key_source, store_factory
from orchestrator.engine.redact import redact
from orchestrator.errors import DrError, IntegrityError, NotFound, Permanent, Transient
from orchestrator.runbook.fields import Duration, LocationText, Name, drctl_error

PG_BIN_ENV = "DRCTL_PG_BIN"
"""A directory holding the PostgreSQL client binaries; used when ``pg_restore`` is not given."""
CHUNK = 1024 * 1024
POLL_S = 0.2
_CORRUPT_DUMP = (
    "does not appear to be a valid",
    "did not find magic string",
    "unsupported version",
    "unexpected end of file",
    "could not read from input file",
    "could not read input file",
    "corrupt",
    "invalid compression",
)


class Params(PgTargetParams):
    """``set`` and ``object`` name the dump; ``point`` or ``at`` pick the recovery point (neither: the latest).
    ``cloud``/``region``/``resource_group`` say where a drill's instances are (drills only)."""

    set_: LocationText = Field(alias="set")
    object_: StrictStr = Field(alias="object", min_length=1)
    point: StrictStr | None = None
    at: datetime | None = None
    key_env: Name | None = None
    pg_restore: StrictStr | None = None
    clean: StrictBool = True
    jobs: StrictInt = Field(default=1, ge=1, le=64)
    timeout: Duration = timedelta(minutes=30)
    cloud: Literal["aws", "azure"] = "aws"
    region: StrictStr | None = None
    resource_group: StrictStr | None = None

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # As backup.restore and the command line: a time without a zone is UTC.
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.point is not None and self.at is not None:
            raise drctl_error("give 'point' or 'at', not both")
        if self.jobs > 1 and not self.clean:
            raise drctl_error(
                "jobs > 1 restores without one transaction, so an interrupted restore leaves part of the dump "
                "behind: keep clean: true (a repeat then drops and recreates it) or use jobs: 1",
                key="jobs",
            )
        if self.resource_group is not None and self.cloud != "azure":
            raise drctl_error("'resource_group' applies to cloud: azure only", key="resource_group")
        return self


def _touches(p: Params) -> tuple[Touch, ...]:
    which = p.point or (f"the newest point at or before {p.at.isoformat()}" if p.at else "the latest point")
    how = "drops and recreates the dump's objects" if p.clean else "adds the dump's objects"
    return Touch("reads", f"{p.object_} of {p.set_} ({which})"), Touch("writes", f"{p.dsn} ({how})")


# -- in a drill ----------------------------------------------------------------------------------------------


def guard_drill(target: PgTarget, p: Params, ctx: ActionContext) -> None:
    """In a drill, refuse a database that is not on an instance this drill launched (see the module doc)."""
    assert ctx.drill is not None
    drill = ctx.drill
    refusal = "a drill restores only into a database on an instance it launched"
    if not is_ip(target.host):
        raise Permanent(
            f"{refusal}, and {target.host} is a host name, not such an instance's private IP: write the drill "
            "instance's address into the DSN (e.g. ${steps.start-db.outputs.private_ip}), or run as a failover"
        )
    compute = compute_in(ctx, p.cloud, p.region, p.resource_group)
    owned = compute.find_described(drill.owner_tag())
    addresses = set()
    for info in owned.values():
        if drill.owns(info.tags) and info.private_ip:
            with contextlib.suppress(ValueError):
                addresses.add(ipaddress.ip_address(info.private_ip))
    if ipaddress.ip_address(target.host) not in addresses:
        raise Permanent(
            f"{refusal}, and {target.host} is not the private IP of any of its {len(addresses)} live instance(s) "
            f"in {compute.region}: point the DSN at a drill instance (e.g. ${{steps.start-db.outputs.private_ip}}), "
            "or run as a failover"
        )


# -- the binary ----------------------------------------------------------------------------------------------


def find_pg_restore(explicit: str | None, env: Mapping[str, str]) -> str:
    """``pg_restore`` as given, else in ``$DRCTL_PG_BIN``, else on the step's ``PATH``; ``NotFound`` naming the fix."""
    fix = "install the PostgreSQL client tools (pg_restore of the dump's major version or newer)"
    if explicit is not None:
        found = shutil.which(explicit, path=env.get("PATH")) if "/" not in explicit else explicit
        if found is None or not os.access(found, os.X_OK) or not Path(found).is_file():
            raise NotFound(f"pg_restore {explicit} is not an executable file: {fix}, or fix 'pg_restore' in the step")
        return found
    directory = env.get(PG_BIN_ENV)
    if directory:
        candidate = Path(directory) / "pg_restore"
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            raise NotFound(f"{PG_BIN_ENV} is {directory}, which holds no pg_restore: {fix} there, or fix {PG_BIN_ENV}")
        return str(candidate)
    found = shutil.which("pg_restore", path=env.get("PATH"))
    if found is None:
        raise NotFound(f"pg_restore is not on PATH: {fix}, or set {PG_BIN_ENV} or the step's 'pg_restore'")
    return found


# -- the dump ------------------------------------------------------------------------------------------------


def _entry(point: RecoveryPoint, key: str) -> ObjectEntry:
    for entry in point.objects:
        if entry.key == key:
            return entry
    near = sorted(e.key for e in point.objects if e.key.rsplit("/", 1)[-1].endswith((".dump", ".backup")))[:5]
    hint = f"; dumps in it: {', '.join(near)}" if near else ""
    raise NotFound(f"recovery point {point.id} holds no object {key!r}{hint}: fix 'object' or pick another point")


def spool(bset: BackupSet, point: RecoveryPoint, entry: ObjectEntry, out: Path, ctx: ActionContext) -> None:
    """Write the object's verified plaintext to ``out`` (created 0600); ``IntegrityError`` unless every byte
    matched the manifest's size and SHA-256."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as sink:
        try:
            reader = read_verified(bset, entry, point.id)
            while chunk := reader.read(CHUNK):  # the final, empty read checks size and SHA-256
                sink.write(chunk)
                if ctx.cancelled():
                    raise Transient(f"stopped reading {entry.key!r} of {point.id}: the step was cancelled or timed out")
        except NotFound:
            raise IntegrityError(
                f"{entry.key!r} of {point.id} is missing from {bset.url} (written by {entry.written_by}): the set is "
                "damaged; pg_restore was not run: pick an earlier point ('point' or 'at')"
            ) from None


# -- pg_restore ----------------------------------------------------------------------------------------------


def restore_command(binary: str, target: PgTarget, dump: Path, clean: bool, jobs: int) -> list[str]:
    """The pg_restore argv. No password is on it: libpq reads ``PGPASSWORD`` from the environment.

    ``-j`` (jobs > 1) excludes ``--single-transaction``: pg_restore refuses the two together, because parallel
    workers each need their own connection and so their own transaction. Such a restore is not atomic."""
    argv = [binary, "--no-owner", "--exit-on-error", "--no-password", "--dbname", target.conninfo()]
    argv += ["--jobs", str(jobs)] if jobs > 1 else ["--single-transaction"]
    if clean:
        argv += ["--clean", "--if-exists"]
    return [*argv, str(dump)]


def restore_env(env: Mapping[str, str], password: str | None) -> dict[str, str]:
    """pg_restore's whole environment: no inherited ``PG*`` settings that could redirect it, English messages
    (they are classified by text), and the password, if any, only here."""
    out = {k: env[k] for k in ("PATH", "HOME", "TMPDIR", "PGPASSFILE", "PGSSLROOTCERT") if k in env}
    out["LC_ALL"] = out["LC_MESSAGES"] = "C"
    if password is not None:
        out["PGPASSWORD"] = password
    return out


def _first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln.lower() or "fatal:" in ln.lower()]
    line = (errors or lines or ["no message"])[0]
    line = line.removeprefix("pg_restore: ").removeprefix("error: ")
    return line if len(line) <= 300 else line[:297] + "..."


def run_pg_restore(
    argv: list[str],
    env: Mapping[str, str],
    deadline: float,
    ctx: ActionContext,
    workdir: Path,
) -> tuple[int, str]:
    """Run pg_restore until it exits, the deadline passes or the step is cancelled (then it is stopped: in one
    transaction the server rolls everything back). Returns the exit code and stderr."""
    errors = workdir / "pg_restore.stderr"
    with errors.open("w+b") as err:
        process = subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=err, stderr=err)  # noqa: S603
        try:
            while True:
                try:
                    code = process.wait(POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    if ctx.cancelled() or time.monotonic() >= deadline:
                        raise
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            return -1, ""
        err.seek(0)
        return code, err.read(1 << 16).decode("utf-8", "replace")


def failure(code: int, stderr: str, target: PgTarget, p: Params, what: str, password: str | None) -> DrError:
    """pg_restore's failure as one line that names the fix."""
    text = redact(stderr, (password,) if password else ())
    low = text.lower()
    atomic = "; it ran in one transaction, so the database is unchanged" if p.jobs == 1 else ""
    if any(m in low for m in ("connection to server", "could not connect", "password authentication", "no password")):
        return classify(text, target, p.password_source(), password)
    if any(marker in low for marker in _CORRUPT_DUMP):
        return Permanent(
            f"{what} is not a usable pg_dump custom-format archive ({_first_error(text)}){atomic}: "
            "dump with pg_dump -Fc (and a pg_restore at least as new), or pick an earlier point"
        )
    return Permanent(
        f"pg_restore exited {code} restoring {what} into {target.url}: {_first_error(text)}{atomic}: "
        "fix what it names in the database (roles, extensions, conflicting objects) and run the step again"
    )


# -- the action ----------------------------------------------------------------------------------------------


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Check the target (drill ownership, pg_restore, a connection), choose the point, spool and verify the
    dump, then pg_restore it. ``point_started`` (when the point's source was read) is the RPO anchor, as in
    ``backup.restore``."""
    started = time.monotonic()
    target = p.target()
    if ctx.drill is not None:
        guard_drill(target, p, ctx)
    binary = find_pg_restore(p.pg_restore, ctx.env)
    password = p.password(ctx.env)
    deadline = deadline_of(ctx, p.timeout)
    # Reach and log in before reading a dump that may be large: a wrong password or a down server shows at once.
    with connect(target, password, p.password_source(), timeout_s=deadline - time.monotonic()):
        pass
    bset = open_set(store_factory(ctx).open(p.set_), key_source(p.key_env, ctx.env), ctx.env)
    point = choose_point(bset, p.point, p.at)
    entry = _entry(point, p.object_)
    what = f"{entry.key!r} of {point.id}"
    with tempfile.TemporaryDirectory(prefix="drctl-db-restore-") as tmp:  # 0700: only drctl's user reads it
        dump = Path(tmp) / "dump"
        try:
            spool(bset, point, entry, dump, ctx)
        except IntegrityError as err:
            raise IntegrityError(f"{err}; pg_restore was not run and {target.url} is unchanged") from None
        ctx.log(f"verified {what}: {entry.size} bytes, sha256 {entry.sha256[:16]}...; restoring into {target.url}")
        argv = restore_command(binary, target, dump, p.clean, p.jobs)
        code, stderr = run_pg_restore(argv, restore_env(ctx.env, password), deadline, ctx, Path(tmp))
    if code == -1:
        return StepResult(
            StepStatus.TIMED_OUT,
            message=f"pg_restore of {what} into {target.url} stopped: the step was cancelled or its timeout passed",
            retryable=True,
        )
    if code != 0:
        raise failure(code, stderr, target, p, what, password)
    return StepResult(
        StepStatus.SUCCEEDED,
        {
            "recovery_point": point.id,
            "point_started": point.started.isoformat(),
            "point_created": point.created.isoformat(),
            "object": entry.key,
            "bytes": entry.size,
            "sha256": entry.sha256,
            "seconds": round(time.monotonic() - started, 3),
        },
    )


SPEC = ActionSpec(
    name="db.restore",
    params=Params,
    description="restore a verified pg_dump from a backup set's recovery point into a PostgreSQL database",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"recovery_point", "point_started", "point_created", "object", "bytes", "sha256", "seconds"}),
    run=run,
)
