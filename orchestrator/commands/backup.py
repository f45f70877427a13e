"""``drctl backup ...``: init, copy, seal, list, verify, restore, prune and keygen over backup sets."""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.backup.copy import CopyOptions, CopyPlan, Filters, execute_copy, plan_copy
from orchestrator.backup.crypto import KeySource
from orchestrator.backup.journal import CopyJournal, state_dir
from orchestrator.backup.pipeline import parse_rate
from orchestrator.backup.progress import progress_for
from orchestrator.backup.prune import RetentionPolicy, prune_set
from orchestrator.backup.recipients import DEFAULT_IDENTITY_ENV, IdentitySource, check_recipients, new_identity
from orchestrator.backup.restore import choose_point, restore_point
from orchestrator.backup.seal import seal_shards
from orchestrator.backup.sets import BackupSet, NewSetOptions, open_or_create_set, open_set
from orchestrator.backup.shard_progress import CHECKPOINT_S
from orchestrator.backup.shards import DEFAULT_GROUP, Shard, parse_shard
from orchestrator.backup.verify import verify_set
from orchestrator.commands.common import add_azure_account, mib, parse_time, print_json
from orchestrator.durations import parse_duration
from orchestrator.engine.lock import LockHolder, SqliteRunLock, locks_path
from orchestrator.errors import ExitCode, InvalidInput
from orchestrator.providers.factory import StoreFactory

DEFAULT_KEY_ENV = "DRCTL_BACKUP_KEY"


def _env() -> dict[str, str]:
    return dict(os.environ)


def store_factory(args: argparse.Namespace) -> StoreFactory:
    transfers = getattr(args, "transfers", 8)
    # Parts in flight per object shrink as objects in flight grow, so memory stays bounded overall.
    return StoreFactory(_env(), azure_account=args.azure_account, part_concurrency=2 if transfers > 4 else 4)


def key_source_of(args: argparse.Namespace) -> KeySource:
    identities = IdentitySource(identity_file=Path(args.identity_file) if args.identity_file else None)
    if args.key_file:
        return KeySource(key_file=Path(args.key_file), identities=identities)
    if args.key_env:
        return KeySource(key_env=args.key_env, identities=identities)
    return KeySource(key_env=DEFAULT_KEY_ENV if os.environ.get(DEFAULT_KEY_ENV) else None, identities=identities)


def _open(args: argparse.Namespace, location: str) -> BackupSet:
    return open_set(store_factory(args).open(location), key_source_of(args), _env())


@contextmanager
def set_lock(set_url: str, command: str, shard: Shard | None = None) -> Iterator[None]:
    """One writer per backup set on this machine: a second copy or prune into it is refused (exit 3). Shards of
    one copy each write only their own slice and manifest, so they lock per shard and run side by side."""
    what = f"backup set {set_url}" + (f" shard {shard.label} of group {shard.group}" if shard else "")
    lock = SqliteRunLock(
        locks_path(state_dir(_env())),
        what,
        hint="wait for it to finish (a lock left by a run that crashed on this host is taken over)",
    )
    holder = LockHolder.here(f"{command}-{os.getpid()}", f"drctl backup {command}")
    try:
        lock.acquire(holder)
        try:
            yield
        finally:
            # Released on failure too: a caller in the same process (a test, a resident service) may go on.
            lock.release(holder)
    finally:
        lock.close()


def filters_of(args: argparse.Namespace) -> Filters:
    return Filters(tuple(args.include or ()), tuple(args.exclude or ()))


# -- copy ---------------------------------------------------------------------------------------------------


def new_set_of(args: argparse.Namespace) -> NewSetOptions:
    """How a set this command creates is made (``--compress``, ``--encrypt``, ``--recipient``)."""
    recipients = check_recipients(args.recipient or ())
    encrypt = args.encrypt or bool(recipients)
    if encrypt and not key_source_of(args).given:
        why = (
            "--recipient needs the set's key too, which authenticates its recovery points (the recipients keep "
            "the data from anyone without an identity)"
            if recipients
            else "--encrypt needs a key"
        )
        raise InvalidInput(f"{why}: --key-file PATH or --key-env VAR (or set {DEFAULT_KEY_ENV})")
    return NewSetOptions(compression=args.compress, encryption=encrypt, recipients=recipients)


def _print_plan(plan: CopyPlan, as_json: bool) -> None:
    todo = plan.to_transfer
    if as_json:
        print_json(
            {
                "dry_run": True,
                "mode": plan.mode,
                "base_point": plan.base_point.id if plan.base_point else None,
                "objects_to_transfer": len(todo),
                "bytes_to_transfer": plan.bytes_to_transfer,
                "objects_unchanged": len(plan.objects) - len(todo),
                "objects": [{"key": o.info.key, "size": o.info.size} for o in todo],
            }
        )
        return
    for o in todo:
        print(f"{o.info.size:>14}  {o.info.key}")
    base = f" against {plan.base_point.id}" if plan.base_point else ""
    print(
        f"dry run ({plan.mode}{base}): would transfer {len(todo)} objects, {mib(plan.bytes_to_transfer)}; "
        f"{len(plan.objects) - len(todo)} unchanged. Nothing was changed."
    )


def _cmd_copy(args: argparse.Namespace) -> int:
    if args.transfers < 1:
        raise InvalidInput("--transfers must be at least 1")
    if (args.shard_group or args.checkpoint_every) and not args.shard:
        raise InvalidInput("--shard-group and --checkpoint-every are for sharded copies; give --shard I/N too")
    checkpoint_s = parse_duration(args.checkpoint_every).total_seconds() if args.checkpoint_every else CHECKPOINT_S
    if checkpoint_s <= 0:
        raise InvalidInput("--checkpoint-every must be longer than 0s, e.g. 30s")
    shard = parse_shard(args.shard, args.shard_group or DEFAULT_GROUP) if args.shard else None
    options = CopyOptions(
        mode=args.mode,
        filters=filters_of(args),
        transfers=args.transfers,
        bwlimit=parse_rate(args.bwlimit) if args.bwlimit else None,
        shard=shard,
        checkpoint_s=checkpoint_s,
    )
    factory = store_factory(args)
    source = factory.open(args.source)
    dest = factory.open(args.dest)
    new_set = new_set_of(args)
    now = datetime.now(UTC)
    bset = open_or_create_set(dest, key_source_of(args), _env(), new_set, now, create=False)
    if bset is None and shard is not None:
        # N shards starting at once would each make the set, and an encrypted one with its own key.
        raise InvalidInput(
            f"{dest.url} is not a backup set yet, and shards cannot make one: run `drctl backup init "
            f"{args.dest}` first (with the --compress, --encrypt or --recipient the set should have)"
        )
    plan = plan_copy(source, bset, options)
    if args.dry_run:
        _print_plan(plan, args.json)
        return ExitCode.OK
    if bset is None:
        bset = open_or_create_set(dest, key_source_of(args), _env(), new_set, now)
        assert bset is not None  # create=True always returns a set
    with set_lock(bset.url, "copy", shard):
        journal = CopyJournal(state_dir(_env()) / "journal.sqlite")
        try:
            result = execute_copy(plan, source, bset, options, journal, progress_for(sys.stderr, quiet=args.quiet))
        finally:
            journal.close()
    if args.json:
        print_json(result.summary())
    else:
        resumed = f", {result.resumed_objects} resumed" if result.resumed_objects else ""
        made = (
            f"shard {shard.label} of group {shard.group!r} done, waiting for `drctl backup seal`"
            if shard
            else f"recovery point {result.recovery_point}"
        )
        print(
            f"{made} ({plan.mode}): {result.objects_transferred} objects, "
            f"{mib(result.bytes_transferred)} transferred in {result.seconds:.1f}s; "
            f"{result.objects_skipped} skipped{resumed}; paths: "
            + ", ".join(f"{k} {v}" for k, v in result.paths.items() if v)
            + "".join(f"; server-side copies verified by {k}: {v}" for k, v in result.server_side_proofs.items())
            + (
                f"; the destination would not copy from a URL ({result.server_side_refused}), so objects streamed"
                if result.server_side_refused
                else ""
            )
        )
    return ExitCode.OK


def _cmd_init(args: argparse.Namespace) -> int:
    store = store_factory(args).open(args.set)
    existing = open_or_create_set(store, key_source_of(args), _env(), new_set_of(args), datetime.now(UTC), create=False)
    bset = existing or open_or_create_set(store, key_source_of(args), _env(), new_set_of(args), datetime.now(UTC))
    assert bset is not None  # create=True always returns a set
    settings = ", ".join(
        s
        for s in (
            "compressed" if bset.config.compression else "",
            "encrypted" if bset.config.encryption else "",
            f"sealed to {len(bset.config.encryption.recipients)} recipient(s)"
            if bset.config.encryption and bset.config.encryption.recipients
            else "",
        )
        if s
    )
    verb = "is already a backup set" if existing else "is a new backup set"
    print(f"{bset.url} {verb} ({settings or 'plain'})")
    return ExitCode.OK


def _cmd_seal(args: argparse.Namespace) -> int:
    bset = _open(args, args.set)
    with set_lock(bset.url, "seal"):
        result = seal_shards(bset, args.shards, args.shard_group, datetime.now(UTC))
    if args.json:
        print_json(result.summary())
        return ExitCode.OK
    point = result.point
    verb = "was already sealed as" if result.already_sealed else "sealed into"
    print(
        f"{result.shards} shards {verb} recovery point {point.id} ({point.mode}): {point.totals.objects} objects, "
        f"{mib(point.totals.bytes)}; {point.totals.objects_transferred} transferred by the shards"
    )
    for left in result.leftovers:
        print(f"warning: could not remove {left}; sealing again removes it", file=sys.stderr)
    return ExitCode.OK


# -- list / verify / restore / prune ---------------------------------------------------------------------------


def _cmd_list(args: argparse.Namespace) -> int:
    bset = _open(args, args.set)
    points = bset.points()
    if args.json:
        print_json(
            [
                {
                    "id": p.id,
                    "created": p.created.isoformat(),
                    "mode": p.mode,
                    "parent": p.parent,
                    "objects": p.totals.objects,
                    "bytes": p.totals.bytes,
                    "bytes_transferred": p.totals.bytes_transferred,
                }
                for p in points
            ]
        )
        return ExitCode.OK
    print(f"{'id':<36} {'created (UTC)':<20} {'mode':<12} {'objects':>8} {'size':>12}  parent")
    for p in points:
        print(
            f"{p.id:<36} {p.created:%Y-%m-%d %H:%M:%S} {p.mode:<12} {p.totals.objects:>8} "
            f"{mib(p.totals.bytes):>12}  {p.parent or '-'}"
        )
    print(f"{len(points)} recovery points", file=sys.stderr)
    return ExitCode.OK


def _cmd_verify(args: argparse.Namespace) -> int:
    bset = _open(args, args.set)
    report = verify_set(bset, args.point or None, deep=args.deep)
    if args.json:
        print_json(report.as_dict())
    else:
        for m in report.missing:
            print(f"missing: {m}")
        for c in report.corrupt:
            print(f"corrupt: {c}")
        for e in report.extra:
            print(f"extra:   blob {e} is referenced by no recovery point (prune removes it)")
        depth = "deep (every byte re-read)" if args.deep else "shallow (presence and size)"
        verdict = "OK" if report.ok else f"FAILED: {len(report.missing)} missing, {len(report.corrupt)} corrupt"
        print(
            f"verify {depth}: {len(report.points)} points, {report.objects_checked} objects: {verdict}",
            file=sys.stderr,
        )
    return ExitCode.OK if report.ok else ExitCode.INTEGRITY


def _cmd_restore(args: argparse.Namespace) -> int:
    if args.point and args.at:
        raise InvalidInput("give --point or --at, not both")
    bset = _open(args, args.set)
    point = choose_point(bset, args.point, parse_time(args.at) if args.at else None)
    target = store_factory(args).open(args.target)
    result = restore_point(
        bset, point, target, filters_of(args), progress=progress_for(sys.stderr, args.quiet, "restore")
    )
    if args.json:
        print_json(
            {
                "recovery_point": result.recovery_point,
                "point_started": result.point_started.isoformat(),
                "point_created": result.point_created.isoformat(),
                "objects_restored": result.objects_restored,
                "bytes_restored": result.bytes_restored,
                "paths": result.paths,
            }
        )
    else:
        print(
            f"restored {result.objects_restored} objects, {mib(result.bytes_restored)} from {result.recovery_point} "
            f"(taken {result.point_created:%Y-%m-%d %H:%M:%S} UTC), every object verified; paths: "
            + ", ".join(f"{k} {v}" for k, v in sorted(result.paths.items()))
        )
    return ExitCode.OK


def _cmd_prune(args: argparse.Namespace) -> int:
    policy = RetentionPolicy(args.keep_last, args.keep_daily, args.keep_weekly)
    bset = _open(args, args.set)
    with set_lock(bset.url, "prune"):
        report = prune_set(bset, policy, datetime.now(UTC), parse_duration(args.grace), dry_run=args.dry_run)
    if args.json:
        print_json(report.as_dict())
    else:
        verb = "would forget" if args.dry_run else "forgot"
        print(
            f"{verb} {len(report.forgotten)} recovery points, kept {len(report.kept)}; "
            f"{'would delete' if args.dry_run else 'deleted'} {report.blobs_deleted} unreferenced objects "
            f"({mib(report.bytes_freed)}); {report.blobs_in_grace} younger than the grace period kept"
        )
    return ExitCode.OK


def _cmd_keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.identity:
        identity, recipient = new_identity()
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _write_secret(out, f"# created: {created}\n# public key: {recipient}\n{identity}\n")
        print(f"wrote a new age identity to {out} (mode 0600); its recipient, for --recipient: {recipient}")
        return ExitCode.OK
    _write_secret(out, base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    print(f"wrote a new 256-bit key to {out} (mode 0600); keep a copy apart from the backups")
    return ExitCode.OK


def _write_secret(out: Path, text: str) -> None:
    """Create ``out`` readable by its owner only; an existing file is never overwritten."""
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise InvalidInput(f"{out} already exists; keys are never overwritten, choose another path") from exc
    except OSError as exc:
        raise InvalidInput(f"cannot create {out}: {exc.strerror}; choose a writable path") from exc
    with os.fdopen(fd, "w") as f:
        f.write(text)


# -- parser -----------------------------------------------------------------------------------------------------


def key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-file", help="file holding the set's key-encryption key (32 bytes, raw/base64/hex)")
    parser.add_argument("--key-env", help=f"environment variable holding the key (default: {DEFAULT_KEY_ENV} if set)")
    parser.add_argument(
        "--identity-file",
        help=f"age identity file that opens a set made with --recipient (default: ${DEFAULT_IDENTITY_ENV} if set)",
    )


def filter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--include", action="append", metavar="GLOB", help="only keys matching (repeatable)")
    parser.add_argument("--exclude", action="append", metavar="GLOB", help="skip keys matching (repeatable)")


def new_set_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compress", action="store_true", help="zstd-compress a new set's objects")
    parser.add_argument("--encrypt", action="store_true", help="AES-256-GCM-encrypt a new set's objects")
    parser.add_argument(
        "--recipient",
        action="append",
        metavar="AGE1...",
        help="seal a new set's data to this age recipient (repeatable): this host can write, not read, backups",
    )


def register(sub: Any) -> None:
    backup = sub.add_parser("backup", help="verified backup sets: copy, list, verify, restore, prune")
    bsub = backup.add_subparsers(dest="backup_command", required=True)

    copy = bsub.add_parser("copy", help="copy SRC into the backup set DST as a new recovery point")
    copy.add_argument("source")
    copy.add_argument("dest")
    copy.add_argument("--mode", choices=["full", "incremental", "differential"], default="incremental")
    copy.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    copy.add_argument("--bwlimit", help="bandwidth limit, e.g. 20M (bytes per second)")
    copy.add_argument("--transfers", type=int, default=8, help="objects in flight at once (default 8)")
    copy.add_argument(
        "--shard",
        metavar="I/N",
        help="copy only the I-th (from 0) of N slices of the source and leave a shard manifest for `backup seal`",
    )
    copy.add_argument(
        "--shard-group", metavar="NAME", help=f"keeps one round of shards apart from others (default {DEFAULT_GROUP})"
    )
    copy.add_argument(
        "--checkpoint-every",
        metavar="DURATION",
        help=f"how often a shard saves its progress in the set, for a rerun elsewhere (default {CHECKPOINT_S:.0f}s)",
    )
    new_set_options(copy)
    copy.add_argument("--json", action="store_true", help="print a JSON summary")
    copy.add_argument("--quiet", action="store_true", help="no progress output")
    filter_options(copy)
    key_options(copy)
    add_azure_account(copy)
    copy.set_defaults(handler=_cmd_copy)

    init = bsub.add_parser("init", help="make an empty backup set (sharded copies need one made first)")
    init.add_argument("set")
    new_set_options(init)
    key_options(init)
    add_azure_account(init)
    init.set_defaults(handler=_cmd_init)

    seal = bsub.add_parser("seal", help="seal the N shard manifests of a sharded copy into one recovery point")
    seal.add_argument("set")
    seal.add_argument("--shards", type=int, required=True, metavar="N", help="how many shards the copy was run with")
    seal.add_argument("--shard-group", default=DEFAULT_GROUP, metavar="NAME", help="as given to the shards")
    seal.add_argument("--json", action="store_true", help="print a JSON summary")
    key_options(seal)
    add_azure_account(seal)
    seal.set_defaults(handler=_cmd_seal)

    lst = bsub.add_parser("list", help="the recovery points of a set")
    lst.add_argument("set")
    lst.add_argument("--json", action="store_true")
    key_options(lst)
    add_azure_account(lst)
    lst.set_defaults(handler=_cmd_list)

    verify = bsub.add_parser("verify", help="check a set: missing, extra and corrupt objects")
    verify.add_argument("set")
    verify.add_argument("--point", action="append", help="only this recovery point (repeatable)")
    verify.add_argument("--deep", action="store_true", help="re-read and hash every byte")
    verify.add_argument("--json", action="store_true")
    key_options(verify)
    add_azure_account(verify)
    verify.set_defaults(handler=_cmd_verify)

    restore = bsub.add_parser("restore", help="materialise a recovery point into TARGET (a store or directory)")
    restore.add_argument("set")
    restore.add_argument("target")
    restore.add_argument("--point", help="recovery point id (default: the latest)")
    restore.add_argument("--at", help="the newest point taken at or before this ISO 8601 time")
    restore.add_argument("--json", action="store_true")
    restore.add_argument("--quiet", action="store_true", help="no progress output")
    filter_options(restore)
    key_options(restore)
    add_azure_account(restore)
    restore.set_defaults(handler=_cmd_restore)

    prune = bsub.add_parser("prune", help="forget points outside a retention policy and delete unreferenced data")
    prune.add_argument("set")
    prune.add_argument("--keep-last", type=int, default=0)
    prune.add_argument("--keep-daily", type=int, default=0)
    prune.add_argument("--keep-weekly", type=int, default=0)
    prune.add_argument("--grace", default="1h", help="keep unreferenced data younger than this (default 1h)")
    prune.add_argument("--dry-run", action="store_true")
    prune.add_argument("--json", action="store_true")
    key_options(prune)
    add_azure_account(prune)
    prune.set_defaults(handler=_cmd_prune)

    keygen = bsub.add_parser("keygen", help="write a new random key-encryption key to a file (mode 0600)")
    keygen.add_argument("out")
    keygen.add_argument(
        "--identity", action="store_true", help="write an age identity instead, and print its recipient"
    )
    keygen.set_defaults(handler=_cmd_keygen)
