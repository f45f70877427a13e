"""Retention: forget recovery points outside the policy and delete data no kept point refers to.

Manifests are removed first and blobs after, so a crash in between leaves only unreferenced blobs (which the
next prune removes), never a kept point without its data. Blobs younger than the grace period are kept even
when unreferenced: they may belong to a copy still running, whose manifest is not written yet. Shards of a
copy that are finished but not sealed keep their data and their base point, however long the seal waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator.backup.layout import DATA_PREFIX, blob_key, point_key
from orchestrator.backup.manifest import RecoveryPoint
from orchestrator.backup.seal import pending_parts
from orchestrator.backup.sets import BackupSet
from orchestrator.errors import InvalidInput


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0

    def __post_init__(self) -> None:
        if min(self.keep_last, self.keep_daily, self.keep_weekly) < 0:
            raise InvalidInput("--keep-* values cannot be negative")
        if not (self.keep_last or self.keep_daily or self.keep_weekly):
            raise InvalidInput("prune needs a policy: give at least one of --keep-last, --keep-daily, --keep-weekly")

    def kept(self, points: list[RecoveryPoint]) -> set[str]:
        newest_first = sorted(points, key=lambda p: p.created, reverse=True)
        keep = {p.id for p in newest_first[: self.keep_last]}
        for count, bucket in ((self.keep_daily, "%Y-%m-%d"), (self.keep_weekly, "%G-W%V")):
            seen: list[str] = []
            for p in newest_first:
                period = p.created.strftime(bucket)
                if period not in seen:
                    if len(seen) == count:
                        break
                    seen.append(period)
                    keep.add(p.id)
        return keep


@dataclass
class PruneReport:
    kept: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    blobs_deleted: int = 0
    bytes_freed: int = 0
    blobs_in_grace: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def prune_set(
    bset: BackupSet, policy: RetentionPolicy, now: datetime, grace: timedelta, dry_run: bool = False
) -> PruneReport:
    points = bset.points()
    # Shards not sealed yet hold data no point names, and compared against a base point their seal still needs.
    pending = pending_parts(bset)
    keep = policy.kept(points) | {p.point.parent for p in pending if p.point.parent}
    report = PruneReport(dry_run=dry_run)
    report.kept = [p.id for p in points if p.id in keep]
    report.forgotten = [p.id for p in points if p.id not in keep]
    referenced = {e.blob for p in points if p.id in keep for e in p.objects}
    referenced |= {e.blob for p in pending for e in p.point.objects}
    doomed = []
    for info in bset.store.list(DATA_PREFIX):
        blob = info.key.rsplit("/", 1)[1]
        if blob in referenced:
            continue
        if now - info.modified < grace:
            report.blobs_in_grace += 1
            continue
        doomed.append(blob)
        report.bytes_freed += info.size
    report.blobs_deleted = len(doomed)
    if dry_run:
        return report
    for pid in report.forgotten:
        bset.store.delete(point_key(pid))
    for blob in doomed:
        bset.store.delete(blob_key(blob))
    return report
