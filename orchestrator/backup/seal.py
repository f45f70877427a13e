"""Seal the shards of one copy into a single recovery point, or refuse and name what is wrong.

The point is written only when every shard of the group has left its manifest, the manifests pass their
digests, they agree on what they copied (source, mode, base point, the set's encoding), every key belongs to
the shard that claims it, no key is claimed twice, and every blob a shard wrote is in the set at its size.
The point is one object written in one request, so it exists whole or not at all; the shard manifests are
removed only after it is written.

Sealing again after a crash between the point and the clean-up writes no second point: a point of the same
source with the same base and the same listing time already exists, and the leftovers are removed.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime

from orchestrator import __version__
from orchestrator.backup.copy import first_unproven
from orchestrator.backup.manifest import CopyPath, ObjectEntry, RecoveryPoint, totals_of
from orchestrator.backup.sets import BackupSet, new_point_id
from orchestrator.backup.shards import SHARDS_PREFIX, Shard, ShardManifest, check_count, check_group, unseal_shard
from orchestrator.errors import DrError, IntegrityError, InvalidInput, NotFound
from orchestrator.providers.base import object_url

_NAME = re.compile(r"([0-9]+)-of-([0-9]+)\.json")
_PROGRESS = re.compile(r"[0-9]+-of-[0-9]+\.progress\.json")


@dataclass(frozen=True)
class SealResult:
    point: RecoveryPoint
    shards: int
    already_sealed: bool
    """A previous seal wrote this point and crashed before removing the shard manifests."""
    leftovers: tuple[str, ...] = ()
    """Shard manifests that could not be removed after the point was written (harmless; sealing again removes
    them)."""

    def summary(self) -> dict[str, object]:
        return {
            "recovery_point": self.point.id,
            "shards": self.shards,
            "already_sealed": self.already_sealed,
            "objects": self.point.totals.objects,
            "bytes": self.point.totals.bytes,
            "objects_transferred": self.point.totals.objects_transferred,
            "bytes_transferred": self.point.totals.bytes_transferred,
            "paths": self.point.paths,
            "shard_manifests_left": list(self.leftovers),
        }


def seal_shards(bset: BackupSet, count: int, group: str, now: datetime) -> SealResult:
    check_count(count)
    check_group(group)
    parts = _load_parts(bset, count, group)
    first = parts[0].point
    _check_agreement(bset, parts)
    if first.parent is not None and first.parent not in bset.point_ids():
        raise NotFound(
            f"the shards' base point {first.parent} is no longer in {bset.url} (pruned while they ran); "
            "their unchanged objects may be gone: run the shards again, then seal"
        )
    entries = _owned_entries(parts)
    written = [e for p in parts for e in p.point.objects if e.written_by == p.point.id]
    lost = first_unproven(bset, written)
    if lost is not None:
        owner = next(p.shard for p in parts if lost in p.point.objects)
        raise IntegrityError(
            f"{lost.key}'s data, written by shard {owner.index}/{owner.count} of group {group!r}, is missing from "
            f"{bset.url} or has the wrong size; no recovery point was written. Run that shard again, then seal"
        )

    started = min(p.point.started for p in parts)
    previous = _latest_of(bset, first.source)
    if previous is not None and _same_copy(previous, first, started, len(entries)):
        return SealResult(previous, count, already_sealed=True, leftovers=_remove_parts(bset, parts))

    point_id = new_point_id(now)
    shard_runs = {p.point.id for p in parts}
    objects = tuple(
        e.model_copy(update={"written_by": point_id}) if e.written_by in shard_runs else e
        for e in sorted(entries, key=lambda e: e.key)
    )
    paths: dict[CopyPath, int] = {}
    for part in parts:
        for path, n in part.point.paths.items():
            paths[path] = paths.get(path, 0) + n
    # Source, mode, base and encoding are every shard's (checked above); the rest is the whole copy's.
    point = first.model_copy(
        update={
            "id": point_id,
            "started": started,
            "created": now,
            "drctl_version": __version__,
            "objects": objects,
            "totals": totals_of(objects, point_id, sum(p.point.totals.objects_unchanged for p in parts)),
            "paths": paths,
        }
    )
    bset.write_point(point)
    return SealResult(point, count, already_sealed=False, leftovers=_remove_parts(bset, parts))


def _load_parts(bset: BackupSet, count: int, group: str) -> list[ShardManifest]:
    prefix = f"{SHARDS_PREFIX}{group}/"
    found: dict[int, str] = {}
    others: set[int] = set()
    for info in bset.store.list(prefix):
        match = _NAME.fullmatch(info.key[len(prefix) :])
        if match is None:
            continue
        index, of = int(match[1]), int(match[2])
        if of == count and index < count:
            found[index] = info.key
        else:
            others.add(of)
    if others:
        counts = ", ".join(str(n) for n in sorted(others))
        raise InvalidInput(
            f"shard group {group!r} in {bset.url} holds shards of a {counts}-way copy, not {count}-way; seal with "
            "the --shards its copies were run with, or give each round its own --shard-group"
        )
    missing = [i for i in range(count) if i not in found]
    if not found:
        raise NotFound(
            f"no shard of group {group!r} has finished in {bset.url}: run the shards (drctl backup copy --shard "
            f"I/{count} --shard-group {group}), then seal; a seal that succeeded removed them (see `drctl backup list`)"
        )
    if missing:
        names = ", ".join(str(i) for i in missing[:20]) + (
            f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        )
        raise NotFound(
            f"shard{'s' if len(missing) > 1 else ''} {names} of {count} (group {group!r}) "
            f"{'have' if len(missing) > 1 else 'has'} not finished: no shard manifest in {bset.url}. "
            "Run them again (each resumes where it stopped), then seal; no recovery point was written"
        )
    mac_key = bset.keys.mac_key if bset.keys else None
    parts = []
    for index in range(count):
        key = found[index]
        with bset.store.open_read(key) as reader:
            part = unseal_shard(reader.read(), object_url(bset.store, key), mac_key)
        if (part.shard.group, part.shard.index, part.shard.count) != (group, index, count):
            raise IntegrityError(
                f"{object_url(bset.store, key)} describes shard {part.shard.index}/{part.shard.count} of group "
                f"{part.shard.group!r}, not its name's; run shard {index}/{count} again to rewrite it"
            )
        parts.append(part)
    return parts


def pending_parts(bset: BackupSet) -> list[ShardManifest]:
    """Every shard manifest not sealed yet, and every running or interrupted shard's progress, of any group:
    prune keeps what they refer to."""
    mac_key = bset.keys.mac_key if bset.keys else None
    parts = []
    for info in bset.store.list(SHARDS_PREFIX):
        name = info.key.rsplit("/", 1)[-1]
        if _NAME.fullmatch(name):
            with bset.store.open_read(info.key) as reader:
                parts.append(unseal_shard(reader.read(), object_url(bset.store, info.key), mac_key))
        elif _PROGRESS.fullmatch(name):
            with bset.store.open_read(info.key) as reader:
                raw = reader.read()
            # A damaged progress file only costs its shard a fresh start: it must not stop prune.
            with contextlib.suppress(IntegrityError):
                parts.append(unseal_shard(raw, object_url(bset.store, info.key), mac_key))
    return parts


def _check_agreement(bset: BackupSet, parts: list[ShardManifest]) -> None:
    def what(p: RecoveryPoint) -> tuple[object, ...]:
        return (p.source, p.mode, p.parent, p.compression, p.encryption)

    reference = what(parts[0].point)
    for part in parts[1:]:
        if what(part.point) != reference:
            first, odd = parts[0].point, part.point
            raise InvalidInput(
                f"shards of one copy disagree in {bset.url}: shard 0 copied {first.source} ({first.mode}, base "
                f"{first.parent or 'none'}) but shard {part.shard.index} copied {odd.source} ({odd.mode}, base "
                f"{odd.parent or 'none'}); run the odd shards again with the same source and --mode, "
                "or give each copy its own --shard-group"
            )
    ours = (bset.config.compression, bset.config.encryption.algorithm if bset.config.encryption else None)
    if reference[3:] != ours:
        raise IntegrityError(f"the shard manifests in {bset.url} do not match the set's encoding; run the shards again")


def _owned_entries(parts: list[ShardManifest]) -> list[ObjectEntry]:
    seen: set[str] = set()
    entries: list[ObjectEntry] = []
    for part in parts:
        shard = Shard(part.shard.index, part.shard.count, part.shard.group)
        for entry in part.point.objects:
            if not shard.owns(entry.key) or entry.key in seen:
                raise IntegrityError(
                    f"shard {shard.label} lists {entry.key!r}, which is not in its slice; its manifest is not "
                    "drctl's: run that shard again"
                )
            seen.add(entry.key)
            entries.append(entry)
    if not entries:
        raise InvalidInput("the shards copied no objects at all; nothing to seal (is the source empty?)")
    return entries


def _latest_of(bset: BackupSet, source: str) -> RecoveryPoint | None:
    for point_id in reversed(bset.point_ids()):
        point = bset.load_point(point_id)
        if point.source == source:
            return point
    return None


def _same_copy(previous: RecoveryPoint, first: RecoveryPoint, started: datetime, objects: int) -> bool:
    # Listing time, base and size together fingerprint the copy: shards of another round list at other times.
    return (
        previous.started == started
        and previous.parent == first.parent
        and previous.mode == first.mode
        and previous.totals.objects == objects
    )


def _remove_parts(bset: BackupSet, parts: list[ShardManifest]) -> tuple[str, ...]:
    left: list[str] = []
    for part in parts:
        key = Shard(part.shard.index, part.shard.count, part.shard.group).manifest_key
        try:
            bset.store.delete(key)
        except DrError:
            # The point is written and is the record now; a leftover manifest only makes a later seal of the
            # same group find an already-sealed copy and remove it then.
            left.append(object_url(bset.store, key))
    return tuple(left)
