"""Check a backup set against its recovery points: missing, extra and corrupt objects.

The shallow check compares the set's listing with every manifest (presence and stored size); ``deep``
re-reads every referenced blob, decrypts and decompresses it, and compares size and SHA-256 with the manifest.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from orchestrator.backup.layout import blob_key
from orchestrator.backup.manifest import ObjectEntry, RecoveryPoint
from orchestrator.backup.pipeline import CancelCheck, HashingReader, never_cancelled, stop_if_cancelled
from orchestrator.backup.seal import pending_parts
from orchestrator.backup.sets import BackupSet
from orchestrator.errors import IntegrityError, NotFound
from orchestrator.providers.base import Readable, object_url


@dataclass
class VerifyReport:
    points: list[str] = field(default_factory=list)
    objects_checked: int = 0
    bytes_read: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "points": self.points,
            "objects_checked": self.objects_checked,
            "bytes_read": self.bytes_read,
            "missing": self.missing,
            "corrupt": self.corrupt,
            "extra": self.extra,
        }


class VerifiedReader:
    """Plaintext checked against the manifest (size, SHA-256), and, where the manifest records one, the stored
    bytes against their own hash; both are checked before the final, empty read returns."""

    def __init__(self, plain: HashingReader, stored: HashingReader | None) -> None:
        self._plain = plain
        self._stored = stored

    def read(self, size: int = -1, /) -> bytes:
        data = self._plain.read(size)
        if not data and self._stored is not None:
            # A decompressor may stop at its frame's end without reading on: the rest is read to check it all.
            while self._stored.read(1024 * 1024):
                pass
        return data


def read_verified(bset: BackupSet, entry: ObjectEntry, point_id: str) -> VerifiedReader:
    """Open one object of a point as verified plaintext: the final read raises ``IntegrityError`` on mismatch."""
    name = f"{entry.key!r} of {point_id} ({object_url(bset.store, blob_key(entry.blob))})"
    raw: Readable = bset.store.open_read(blob_key(entry.blob))
    stored = None
    if entry.stored_sha256 is not None:
        stored = HashingReader(raw, f"the stored blob of {name}", entry.stored_sha256, entry.stored_size)
        raw = stored
    return VerifiedReader(HashingReader(bset.decode(raw, entry.blob, name), name, entry.sha256, entry.size), stored)


def _deep_check(bset: BackupSet, entry: ObjectEntry, point_id: str, cancelled: CancelCheck) -> str | None:
    try:
        stop_if_cancelled(cancelled, "the verify")
        reader = read_verified(bset, entry, point_id)
        while reader.read(1024 * 1024):
            stop_if_cancelled(cancelled, "the verify")
    except IntegrityError as exc:
        return str(exc)
    except NotFound:
        return f"{entry.key!r} of {point_id}: blob vanished during the check"
    return None


def verify_set(
    bset: BackupSet,
    point_ids: list[str] | None = None,
    deep: bool = False,
    workers: int = 8,
    cancelled: CancelCheck = never_cancelled,
) -> VerifyReport:
    report = VerifyReport()
    ids = point_ids if point_ids is not None else bset.point_ids()
    points: list[RecoveryPoint] = [bset.load_point(i) for i in ids]
    present = bset.blob_sizes()
    referenced: set[str] = set()
    to_read: dict[str, tuple[ObjectEntry, str]] = {}
    for point in points:
        report.points.append(point.id)
        for entry in point.objects:
            report.objects_checked += 1
            referenced.add(entry.blob)
            size = present.get(entry.blob)
            if size is None:
                report.missing.append(
                    f"{entry.key!r} of {point.id} (blob {entry.blob[:12]}…, written by {entry.written_by})"
                )
            elif size != entry.stored_size:
                report.corrupt.append(f"{entry.key!r} of {point.id}: stored size {size}, recorded {entry.stored_size}")
            elif deep:
                to_read.setdefault(entry.blob, (entry, point.id))
    if point_ids is None:
        # Data of shards not sealed yet (or still running) is awaited by a seal, not extra.
        referenced |= {e.blob for part in pending_parts(bset) for e in part.point.objects}
        report.extra = sorted(b for b in present if b not in referenced)
    if deep:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda item: _deep_check(bset, item[0], item[1], cancelled), to_read.values()))
        report.corrupt += [r for r in results if r]
        report.bytes_read = sum(e.size for e, _ in to_read.values())
    return report
