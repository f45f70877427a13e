"""Copy a source into a backup set as a new recovery point: plan, transfer in parallel, verify, seal.

- ``full`` sends every object; ``incremental`` compares against the set's latest point; ``differential``
  against its latest full. An object is unchanged when its size and etag match the base, or when both carry
  the same native content hash (Azure's Content-MD5); a changed etag alone is never trusted as "same".
- Every streamed object is hashed (SHA-256) as it is read; its size and any hash the source vouches for are
  checked before the destination write is committed, and the destination's own whole-object hash, where it
  reports one, must equal ours (a store that reports an MD5 has the service check it against the bytes sent,
  so MD5 is computed once per byte, by the store).
- Where the source and the set are in one service and the set stores the source's bytes as they are (no
  compression or encryption), the service copies them (``server_side.py``) and the copy is proven by the
  service's checksum or by one read-back; the summary counts which.
- Finished objects are journalled one by one, so a re-run after a crash sends nothing already verified.
- The manifest is written last, after the set is asked again for every blob this run wrote (one listing, or
  a stat each for a few blobs in a set with history): a concurrent prune elsewhere cannot leave a point
  naming a blob that is gone.
"""

from __future__ import annotations

import fnmatch
import io
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime

from orchestrator import __version__
from orchestrator.backup.journal import CopyJournal
from orchestrator.backup.layout import blob_id, blob_key
from orchestrator.backup.manifest import CopyPath, Mode, ObjectEntry, RecoveryPoint, totals_of
from orchestrator.backup.pipeline import (
    CancelCheck,
    HashingReader,
    MeteredReader,
    TokenBucket,
    never_cancelled,
    stop_if_cancelled,
)
from orchestrator.backup.progress import ProgressSink, QuietProgress
from orchestrator.backup.server_side import (
    Proof,
    build_from_url,
    can_build_from_url,
    can_copy_server_side,
    copy_server_side,
)
from orchestrator.backup.sets import BackupSet, new_point_id
from orchestrator.backup.shard_progress import CHECKPOINT_S, ShardCheckpoint, load_progress
from orchestrator.backup.shards import Shard, ShardInfo, ShardManifest, seal_shard
from orchestrator.errors import IntegrityError, InvalidInput, NotFound, ServerSideUnavailable, Transient
from orchestrator.providers.base import (
    ETAG_MD5_HINT,
    Md5CheckedWrite,
    ObjectInfo,
    ObjectStore,
    Readable,
    object_url,
)

PathTaken = CopyPath | str
# Below this many blobs to check, a stat each is cheaper than listing the whole set (of unknown size).
STAT_LIMIT = 500


@dataclass(frozen=True)
class Filters:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def accept(self, key: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(key, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(key, p) for p in self.exclude)


NO_FILTERS = Filters()


@dataclass(frozen=True)
class CopyOptions:
    mode: Mode
    filters: Filters = NO_FILTERS
    transfers: int = 8
    bwlimit: float | None = None
    cancelled: CancelCheck = never_cancelled
    """Checked between objects and between chunks; once true, the copy stops with ``Cancelled``, unsealed."""
    shard: Shard | None = None
    """Copy only this shard's slice of the source and leave a shard manifest; ``seal_shards`` makes the point."""
    checkpoint_s: float = CHECKPOINT_S
    """A shard writes its progress into the set this often, for a rerun elsewhere to resume from."""


@dataclass(frozen=True)
class PlannedObject:
    info: ObjectInfo
    base: ObjectEntry | None

    @property
    def unchanged(self) -> bool:
        return self.base is not None


@dataclass(frozen=True)
class CopyPlan:
    started: datetime
    source_url: str
    mode: Mode
    base_point: RecoveryPoint | None
    objects: tuple[PlannedObject, ...]

    @property
    def to_transfer(self) -> list[PlannedObject]:
        return [o for o in self.objects if not o.unchanged]

    @property
    def bytes_to_transfer(self) -> int:
        return sum(o.info.size for o in self.to_transfer)


@dataclass
class CopyResult:
    recovery_point: str
    """The point's id; for a shard, the id of its part (its run id), which the seal's point replaces."""
    objects_transferred: int
    objects_skipped: int
    bytes_transferred: int
    seconds: float
    paths: dict[str, int]
    resumed_objects: int = 0
    object_paths: dict[str, str] = field(default_factory=dict)
    shard: Shard | None = None
    server_side_proofs: dict[str, int] = field(default_factory=dict)
    """How this run's server-side copies were proven: the service's checksum of the copy, the source's stored
    checksum, or a read-back."""
    server_side_refused: str | None = None
    """Why the destination's service would not build blobs from a URL (its error code, or the error that outlasted
    the retries), so this run streamed."""

    def summary(self) -> dict[str, object]:
        shard = {"shard": self.shard.label, "shard_group": self.shard.group} if self.shard else {}
        return {
            "recovery_point": None if self.shard else self.recovery_point,
            **shard,
            "objects_transferred": self.objects_transferred,
            "objects_skipped": self.objects_skipped,
            "objects_resumed": self.resumed_objects,
            "bytes_transferred": self.bytes_transferred,
            "seconds": round(self.seconds, 3),
            "mib_per_s": round(self.bytes_transferred / 2**20 / self.seconds, 2) if self.seconds > 0 else None,
            "paths": self.paths,
            "server_side_verified_by": self.server_side_proofs,
            "server_side_refused": self.server_side_refused,
        }


def _same_content(base: ObjectEntry, info: ObjectInfo) -> bool:
    if base.size != info.size:
        return False
    if info.etag is not None and base.source_etag == info.etag:
        return True
    md5 = info.hashes.get("md5")
    return md5 is not None and base.source_md5 == md5


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _base_point(bset: BackupSet | None, mode: Mode, source_url: str) -> RecoveryPoint | None:
    if mode == "full" or bset is None:
        return None
    for point_id in reversed(bset.point_ids()):
        point = bset.load_point(point_id)
        # A set may hold points of several sources; comparing against another source's state would be wrong.
        if point.source == source_url and (mode == "incremental" or point.mode == "full"):
            return point
    raise InvalidInput(
        f"no {'recovery point' if mode == 'incremental' else 'full recovery point'} of {source_url} in "
        f"{bset.url} to base {_article(mode)} {mode} copy on; take a full copy first (--mode full)"
    )


def plan_copy(
    source: ObjectStore,
    bset: BackupSet | None,
    options: CopyOptions,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CopyPlan:
    """Decide, without writing anything, what the copy will send. ``bset`` is None for a set not yet made."""
    # The source is checked first: a missing or empty source is the problem to report, whatever the mode.
    source.ensure_root()
    started = now()
    # The base point (a manifest of every object) is read while the source is listed: two services, two
    # round trips of similar length on a large set. Its error, if any, is only raised once the listing is good.
    with ThreadPoolExecutor(1, thread_name_prefix="base-point") as pool:
        base_point = pool.submit(_base_point, bset, options.mode, source.url)
        listed = [info for info in source.list() if options.filters.accept(info.key)]
        if not listed:
            filtered = " matching --include/--exclude" if options.filters.include or options.filters.exclude else ""
            raise InvalidInput(f"source {source.url} has no objects{filtered}; nothing to back up")
        if bset is None and options.mode != "full":
            raise InvalidInput(
                f"there is no backup set yet to base {_article(options.mode)} {options.mode} copy on; "
                "take a full copy first"
            )
        base = base_point.result()
    if options.shard is not None:
        # After the emptiness check: a shard's slice of a small source may be empty, the source may not.
        listed = [info for info in listed if options.shard.owns(info.key)]
    base_index = {e.key: e for e in base.objects} if base else {}
    planned: list[PlannedObject] = []
    for info in listed:
        prev = base_index.get(info.key)
        planned.append(PlannedObject(info, prev if prev is not None and _same_content(prev, info) else None))
    return CopyPlan(started, source.url, options.mode, base, tuple(planned))


@dataclass
class _Run:
    """One copy run's moving parts, shared by the worker threads."""

    source: ObjectStore
    bset: BackupSet
    run_id: str
    journal: CopyJournal
    progress: ProgressSink
    bucket: TokenBucket | None
    cancelled: CancelCheck = never_cancelled
    shard: Shard | None = None
    bytes_sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    server_side_proofs: dict[str, int] = field(default_factory=dict)
    from_url_unavailable: str | None = None
    """Why the service would not build a blob from a URL (its error code, or the error that outlasted the
    retries); once set, later objects stream."""

    def count(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n
        self.progress.add_bytes(n)

    def proved(self, proof: Proof) -> None:
        with self._lock:
            self.server_side_proofs[proof] = self.server_side_proofs.get(proof, 0) + 1


def _entry(
    run: _Run,
    info: ObjectInfo,
    blob: str,
    sha256: str,
    stored: int,
    source_md5: str | None = None,
    stored_sha256: str | None = None,
) -> ObjectEntry:
    return ObjectEntry(
        key=info.key,
        size=info.size,
        sha256=sha256,
        blob=blob,
        stored_size=stored,
        source_etag=info.etag,
        source_version=info.version_id,
        source_modified=info.modified,
        source_md5=source_md5 or info.hashes.get("md5"),
        written_by=run.run_id,
        stored_sha256=stored_sha256,
    )


def _server_side(run: _Run, info: ObjectInfo, blob: str) -> tuple[ObjectEntry, Proof] | None:
    # A set that compresses or encrypts stores other bytes than the source's: only streaming makes them.
    if run.bset.transforms_bytes:
        return None
    meta = {"drctl_source_key": _safe_meta(info.key)}
    if not can_copy_server_side(run.source, run.bset.store):
        return _built_from_url(run, info, blob, meta)
    md5 = info.hashes.get("md5")
    copied = copy_server_side(
        run.source, info.key, run.bset.store, blob_key(blob), meta, size=info.size, expect_md5=md5
    )
    if copied is None:
        return None
    run.count(info.size)
    return _entry(run, info, blob, copied.sha256, copied.size, copied.md5 or md5), copied.proof


def _built_from_url(run: _Run, info: ObjectInfo, blob: str, meta: dict[str, str]) -> tuple[ObjectEntry, Proof] | None:
    if run.from_url_unavailable is not None or not can_build_from_url(run.source, run.bset.store):
        return None
    try:
        copied = build_from_url(run.source, info, run.bset.store, blob_key(blob), meta)
    except ServerSideUnavailable as exc:
        # The service lacks the call or cannot reach the source: every object of this run would fail the same
        # way, so the run streams from now on and says why in its summary.
        run.from_url_unavailable = exc.code
        return None
    except Transient as exc:
        # Still failing after the store's retries (Azurite answers 500 under a SAS, for one). This path only
        # saves drctl's bandwidth: the object streams, with its own retries, and so does the rest of the run.
        run.from_url_unavailable = f"{type(exc).__name__}: {exc}"
        return None
    if copied is None:
        return None
    run.count(info.size)
    return _entry(run, info, blob, copied.sha256, copied.size, copied.md5), copied.proof


def _safe_meta(value: str) -> str:
    # Metadata values must be ASCII on both S3 and Azure; keys can be any unicode.
    return value.encode("unicode_escape").decode("ascii")[:1024]


def _streamed(run: _Run, info: ObjectInfo, blob: str) -> ObjectEntry:
    name = object_url(run.source, info.key)
    store = run.bset.store
    meta = {"drctl_source_key": _safe_meta(info.key)}
    stored_hasher: HashingReader | None = None
    with run.source.open_read(info.key) as reader:
        source_md5 = reader.content_md5 or info.hashes.get("md5")
        # Where the source vouches for an MD5 and the destination's service checks one given up front, the
        # service proves the bytes it stores are the source's: no MD5 pass here (MD5 is the slowest hash
        # we would compute). Otherwise the MD5 is computed while reading, to check the source's claim.
        checker = store if isinstance(store, Md5CheckedWrite) and not run.bset.transforms_bytes else None
        service_checks = checker is not None and source_md5 is not None
        hasher = HashingReader(
            reader, name, expect_size=info.size, with_md5=source_md5 is not None and not service_checks
        )
        metered: Readable = MeteredReader(hasher, run.count, run.bucket, run.cancelled)
        if checker is not None and source_md5 is not None:
            try:
                written = checker.write_md5_checked(blob_key(blob), metered, source_md5, metadata=meta)
            except IntegrityError as exc:
                # The store can only name the blob; the user needs the object whose bytes failed.
                raise IntegrityError(f"copying {name}: {exc}") from exc
        else:
            encoded: Readable = run.bset.encode(metered, blob)
            # Compressed but not encrypted: nothing authenticates the stored bytes, so their hash is recorded.
            stored_hasher = HashingReader(encoded, name) if run.bset.stores_hash else None
            written = store.write(blob_key(blob), stored_hasher or encoded, metadata=meta)
    sha256 = hasher.sha256.hexdigest()
    md5 = hasher.md5.hexdigest() if hasher.md5 is not None else written.hashes.get("md5") if service_checks else None
    if source_md5 is not None and source_md5 != md5:
        raise IntegrityError(
            f"{name} does not match the MD5 its store reports: the source is corrupt or changed ({ETAG_MD5_HINT})"
        )
    if not run.bset.transforms_bytes:
        # The bytes written are the bytes read: the destination's own view of them must agree with ours.
        ours = {"sha256": sha256, "md5": md5}
        if written.size != hasher.size or any(ours[k] not in (None, v) for k, v in written.hashes.items()):
            raise IntegrityError(f"{object_url(store, blob_key(blob))} does not match what was read from {name}")
    stored_sha256 = stored_hasher.sha256.hexdigest() if stored_hasher is not None else None
    return _entry(run, info, blob, sha256, written.size, source_md5, stored_sha256)


def _transfer(run: _Run, planned: PlannedObject) -> tuple[ObjectEntry, PathTaken]:
    info = planned.info
    blob = blob_id(run.source.url, info.key, info.size, info.etag)
    copied = _server_side(run, info, blob)
    if copied is None:
        entry, path = _streamed(run, info, blob), "streamed"
    else:
        entry, proof = copied
        path = "server-side"
        run.proved(proof)
    run.journal.record(run.run_id, entry)
    run.progress.object_done()
    return entry, path


def _resumable(run: _Run, plan: CopyPlan, checkpointed: tuple[ObjectEntry, ...]) -> dict[str, ObjectEntry]:
    """Objects the interrupted run finished (journalled here, or checkpointed in the set by a shard that ran
    elsewhere) that are still in the set, unchanged at the source."""
    done = {e.key: e for e in checkpointed} | run.journal.done_objects(run.run_id)
    if not done:
        return {}
    present = run.bset.blob_sizes()
    # Only objects this run still has to send; an unchanged one is taken from the base point as usual.
    current = {o.info.key: o.info for o in plan.to_transfer}
    usable: dict[str, ObjectEntry] = {}
    for key, entry in done.items():
        info = current.get(key)
        if info is None or entry.size != info.size or entry.source_etag != info.etag:
            continue
        if present.get(entry.blob) == entry.stored_size:
            usable[key] = entry
    return usable


def execute_copy(
    plan: CopyPlan,
    source: ObjectStore,
    bset: BackupSet,
    options: CopyOptions,
    journal: CopyJournal,
    progress: ProgressSink | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    clock: Callable[[], float] = time.monotonic,
) -> CopyResult:
    started = clock()
    # The journal's run id survives a crash; the recovery point's id is only minted when it is sealed, so
    # points sort in the order they came into existence, resumed or not.
    # Each shard resumes its own run: shards of one copy may run side by side on one machine.
    scope = (
        plan.source_url
        if options.shard is None
        else f"{plan.source_url} (shard {options.shard.label} of {options.shard.group})"
    )
    # A shard rerun on another machine has no journal of its first run: it takes over the run its progress
    # file in the set describes (shard_progress.py).
    elsewhere = load_progress(bset, options.shard) if options.shard else None
    run_id = journal.unfinished_run(bset.url, scope, plan.mode) or (elsewhere.id if elsewhere else new_point_id(now()))
    journal.start(run_id, bset.url, scope, plan.mode, now().isoformat())
    sink = progress or QuietProgress()
    bucket = TokenBucket(options.bwlimit) if options.bwlimit else None
    run = _Run(source, bset, run_id, journal, sink, bucket, options.cancelled, options.shard)

    checkpointed = elsewhere.objects if elsewhere is not None and elsewhere.id == run_id else ()
    resumed = _resumable(run, plan, checkpointed)
    pending = [o for o in plan.to_transfer if o.info.key not in resumed]
    entries: dict[str, ObjectEntry] = dict(resumed)
    paths: dict[str, int] = {"streamed": 0, "server-side": 0, "unchanged": 0, "resumed": len(resumed)}
    object_paths: dict[str, str] = dict.fromkeys(resumed, "resumed")
    for planned in plan.objects:
        if planned.base is not None:
            entries[planned.info.key] = planned.base
            paths["unchanged"] += 1
            object_paths[planned.info.key] = "unchanged"

    checkpoint = ShardCheckpoint(bset, options.shard, options.checkpoint_s, clock) if options.shard else None
    sink.start(len(pending), sum(o.info.size for o in pending))
    try:
        for entry, path in _run_parallel(run, pending, options.transfers):
            entries[entry.key] = entry
            paths[str(path)] += 1
            object_paths[entry.key] = str(path)
            if checkpoint is not None and checkpoint.due():
                done = tuple(e for e in entries.values() if e.written_by == run_id)
                checkpoint.write(_point(run, plan, done, paths, now()))
    finally:
        sink.finish()

    stop_if_cancelled(run.cancelled, "the copy")  # the last safe moment: after it, the point is sealed
    objects = tuple(entries[o.info.key] for o in plan.objects)
    # Prove the blobs this run wrote are in the set before a manifest claims them. Blobs taken over from the
    # base point were proven when it was sealed, and prune never removes what an existing point refers to.
    prove_written(bset, [e for e in objects if e.written_by == run_id])
    point = _point(run, plan, objects, paths, now())
    if options.shard is None:
        bset.write_point(point)
    else:
        _write_shard_manifest(bset, options.shard, point)
        if checkpoint is not None:
            checkpoint.remove()
    journal.finish(run_id, now().isoformat())
    return CopyResult(
        recovery_point=point.id,
        objects_transferred=len(pending),
        objects_skipped=len(plan.objects) - len(pending),
        bytes_transferred=run.bytes_sent,
        seconds=clock() - started,
        paths=paths,
        resumed_objects=len(resumed),
        object_paths=object_paths,
        shard=options.shard,
        server_side_proofs=dict(run.server_side_proofs),
        server_side_refused=run.from_url_unavailable,
    )


def _run_parallel(run: _Run, pending: list[PlannedObject], transfers: int) -> Iterator[tuple[ObjectEntry, PathTaken]]:
    """Transfer with at most ``transfers`` objects in flight. On the first failure no new object starts; the
    ones in flight finish (and are journalled) before the error is raised."""
    queue = iter(pending)
    with ThreadPoolExecutor(max(1, transfers), thread_name_prefix="copy") as pool:
        in_flight: set[Future[tuple[ObjectEntry, PathTaken]]] = set()
        try:
            while True:
                while len(in_flight) < transfers and (nxt := next(queue, None)) is not None:
                    stop_if_cancelled(run.cancelled, "the copy")
                    in_flight.add(pool.submit(_transfer, run, nxt))
                if not in_flight:
                    return
                done, in_flight = wait(in_flight, return_when=FIRST_EXCEPTION)
                failed = [f for f in done if f.exception() is not None]
                for f in done:
                    if f.exception() is None:
                        yield f.result()
                if failed:
                    wait(in_flight)
                    _reraise(failed[0])
        except BaseException:
            for f in in_flight:
                f.cancel()
            raise


def stored_sizes(bset: BackupSet, blobs: list[str]) -> dict[str, int]:
    """Stored sizes of ``blobs``: one stat each for a few, one listing of the set for many, or whenever the set
    was made by this run (it then holds only this run's blobs, so a listing costs a request per thousand)."""
    if not blobs:
        return {}
    if bset.made_now or len(blobs) > STAT_LIMIT:
        return bset.blob_sizes()

    def size(blob: str) -> tuple[str, int | None]:
        try:
            return blob, bset.store.stat(blob_key(blob)).size
        except NotFound:
            return blob, None

    # Stats are independent round trips: in parallel they cost about one.
    with ThreadPoolExecutor(16, thread_name_prefix="stat") as pool:
        return {blob: n for blob, n in pool.map(size, blobs) if n is not None}


def _reraise(future: Future[tuple[ObjectEntry, PathTaken]]) -> None:
    future.result()  # raises the worker's exception with its own traceback


def first_unproven(bset: BackupSet, written: list[ObjectEntry]) -> ObjectEntry | None:
    """The first entry of ``written`` whose blob is not in the set at its recorded size, if any."""
    present = stored_sizes(bset, [e.blob for e in written])
    return next((e for e in written if present.get(e.blob) != e.stored_size), None)


def prove_written(bset: BackupSet, written: list[ObjectEntry]) -> None:
    """Raise unless every blob this run wrote is in the set at its recorded size."""
    lost = first_unproven(bset, written)
    if lost is not None:
        raise IntegrityError(
            f"{lost.key}'s data (written by this run) is missing from {bset.url} or has the wrong size; "
            "the recovery point was not written. Run the copy again."
        )


def _point(
    run: _Run, plan: CopyPlan, objects: tuple[ObjectEntry, ...], paths: dict[str, int], created: datetime
) -> RecoveryPoint:
    """The recovery point of a whole copy, or a shard's part of one (its id is then the shard's run id, which
    its entries keep naming until the seal gives them the point's)."""
    point_id = run.run_id if run.shard is not None else new_point_id(created)
    # Entries this run wrote name the run in the journal; in the manifest they name the point.
    objects = tuple(e.model_copy(update={"written_by": point_id}) if e.written_by == run.run_id else e for e in objects)
    return RecoveryPoint(
        id=point_id,
        started=plan.started,
        created=created,
        mode=plan.mode,
        parent=plan.base_point.id if plan.base_point else None,
        source=plan.source_url,
        drctl_version=__version__,
        compression=run.bset.config.compression,
        encryption=run.bset.config.encryption.algorithm if run.bset.config.encryption else None,
        objects=objects,
        totals=totals_of(objects, point_id, paths["unchanged"]),
        paths={k: v for k, v in paths.items() if k in ("streamed", "server-side", "unchanged")},  # type: ignore[misc]
    )


def _write_shard_manifest(bset: BackupSet, shard: Shard, part: RecoveryPoint) -> None:
    manifest = ShardManifest(shard=ShardInfo(group=shard.group, index=shard.index, count=shard.count), point=part)
    raw = seal_shard(manifest, bset.keys.mac_key if bset.keys else None)
    bset.store.write(shard.manifest_key, io.BytesIO(raw), metadata={"drctl_kind": "shard-manifest"})
