"""Materialise a recovery point into any store or directory, verifying every object before it is committed.

Where the set stores objects as they are (no compression or encryption) and the target is in the same service,
each object is copied server-side and proven against the point's SHA-256 (by the service's checksum or one
read-back), and a copy that fails is deleted from the target; otherwise it is streamed and verified as read.

Before anything is written, restore checks that every object the point needs is in the set (a point whose
data was lost with an earlier link of its chain is refused) and that no key could escape the target.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.backup.copy import NO_FILTERS, Filters
from orchestrator.backup.layout import blob_key
from orchestrator.backup.manifest import RecoveryPoint
from orchestrator.backup.pipeline import CancelCheck, MeteredReader, never_cancelled, stop_if_cancelled
from orchestrator.backup.progress import ProgressSink, QuietProgress
from orchestrator.backup.server_side import can_copy_server_side, copy_server_side
from orchestrator.backup.sets import BackupSet
from orchestrator.backup.verify import read_verified
from orchestrator.errors import IntegrityError, InvalidInput, NotFound
from orchestrator.providers.base import CreatableRoot, KeyRules, ObjectStore, ensure_or_create_root


@dataclass(frozen=True)
class RestoreResult:
    recovery_point: str
    point_started: datetime
    point_created: datetime
    objects_restored: int
    bytes_restored: int
    paths: dict[str, int] = field(default_factory=dict)
    """Objects restored per path: ``streamed``, and ``server-side`` by how each was proven."""


def choose_point(bset: BackupSet, point_id: str | None, at: datetime | None) -> RecoveryPoint:
    """The point named, or the newest taken at or before ``at``, or the newest of all."""
    if point_id is not None:
        return bset.load_point(point_id)
    ids = bset.point_ids()
    if not ids:
        raise NotFound(f"{bset.url} has no recovery points yet; take a backup first")
    if at is None:
        return bset.load_point(ids[-1])
    chosen: RecoveryPoint | None = None
    for pid in ids:
        point = bset.load_point(pid)
        if point.created <= at:
            chosen = point
    if chosen is None:
        first = bset.load_point(ids[0])
        raise NotFound(
            f"no recovery point at or before {at.isoformat()}; the oldest is {first.id} ({first.created.isoformat()})"
        )
    return chosen


def restore_point(
    bset: BackupSet,
    point: RecoveryPoint,
    target: ObjectStore,
    filters: Filters = NO_FILTERS,
    workers: int = 8,
    progress: ProgressSink | None = None,
    cancelled: CancelCheck = never_cancelled,
) -> RestoreResult:
    """Restore the point's objects into ``target``. ``cancelled`` is checked between objects and chunks: once
    true, no new object starts and no unfinished one is committed (``Cancelled``)."""
    entries = [e for e in point.objects if filters.accept(e.key)]
    if not entries:
        raise InvalidInput(f"recovery point {point.id} has no objects matching --include/--exclude")
    # Into a directory folder markers (empty objects named like "logs/") are directories, not files.
    if isinstance(target, CreatableRoot):
        entries = [e for e in entries if not (e.key.endswith("/") and e.size == 0)]
    # Every key is checked before anything is written: a target that cannot hold one as itself (a directory,
    # where a key becomes a path; Azure, which resolves dot segments) gets nothing.
    for e in entries:
        problem = target.key_problem(e.key) if isinstance(target, KeyRules) else None
        if problem:
            raise InvalidInput(
                f"recovery point {point.id} holds key {e.key!r}, which {problem}; nothing restored "
                "(restore into an S3 location, or leave the key out with --exclude)"
            )
    present = bset.blob_sizes()
    for e in entries:
        if present.get(e.blob) != e.stored_size:
            raise IntegrityError(
                f"recovery point {point.id} needs {e.key!r}, written by {e.written_by}, and that data is missing or "
                "damaged in the set: the chain is broken; nothing restored. Pick an earlier point or re-run a full copy"
            )
    ensure_or_create_root(target)
    sink = progress or QuietProgress()
    total = 0
    lock = threading.Lock()

    def count(n: int) -> None:
        nonlocal total
        with lock:
            total += n
        sink.add_bytes(n)

    server_side = not bset.transforms_bytes and can_copy_server_side(bset.store, target)
    paths: dict[str, int] = {}

    def one(entry_index: int) -> None:
        entry = entries[entry_index]
        stop_if_cancelled(cancelled, "the restore")
        copied = (
            copy_server_side(
                bset.store,
                blob_key(entry.blob),
                target,
                entry.key,
                {},
                size=entry.size,
                expect_sha256=entry.sha256,
                discard_failed=True,
            )
            if server_side
            else None
        )
        if copied is None:
            reader = read_verified(bset, entry, point.id)
            target.write(entry.key, MeteredReader(reader, count, None, cancelled))
        else:
            count(copied.size)
        path = "streamed" if copied is None else f"server-side ({copied.proof})"
        with lock:
            paths[path] = paths.get(path, 0) + 1
        sink.object_done()

    sink.start(len(entries), sum(e.size for e in entries))
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="restore") as pool:
            list(pool.map(one, range(len(entries))))
    finally:
        sink.finish()
    return RestoreResult(point.id, point.started, point.created, len(entries), total, paths)
