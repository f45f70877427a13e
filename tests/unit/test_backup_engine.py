"""The backup engine's logic over in-memory stores: what each mode sends, filters, resume from the journal,
sealed manifests, retention, restore's refusals and verify. Times are fixed where the logic depends on them."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.backup.copy import (
    NO_FILTERS,
    CopyOptions,
    CopyPlan,
    CopyResult,
    Filters,
    execute_copy,
    plan_copy,
)
from orchestrator.backup.crypto import KeySource
from orchestrator.backup.journal import CopyJournal, state_dir
from orchestrator.backup.layout import CONFIG_KEY, DATA_PREFIX, blob_id, blob_key, point_key
from orchestrator.backup.manifest import Mode, ObjectEntry, RecoveryPoint, Totals, seal, unseal
from orchestrator.backup.prune import RetentionPolicy, prune_set
from orchestrator.backup.restore import choose_point, restore_point
from orchestrator.backup.sets import BackupSet, NewSetOptions, open_or_create_set, open_set
from orchestrator.backup.verify import verify_set
from orchestrator.errors import DrError, IntegrityError, InvalidInput, NotFound, Transient, WrongKey
from orchestrator.providers.base import ObjectInfo, ObjectReader, Readable
from orchestrator.providers.local import LocalStore
from orchestrator.providers.memory import MemoryStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


# -- fakes and helpers ---------------------------------------------------------------------------------------------


class FlakyStore(MemoryStore):
    """A source whose reads of ``fail_on`` break mid-run, as a dropped connection would."""

    def __init__(self, name: str = "src") -> None:
        super().__init__(name)
        self.fail_on: str | None = None

    def open_read(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        if key == self.fail_on:
            raise Transient(f"{self.url}{key}: connection reset (simulated)")
        return super().open_read(key, start, length)


class AzureLikeStore(MemoryStore):
    """Lists a native MD5 for every object, as Azure does; its etag still changes on every write."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for info in super().list(prefix):
            with self.open_read(info.key) as reader:
                md5 = hashlib.md5(reader.read()).hexdigest()  # modelling Azure's Content-MD5
            yield ObjectInfo(info.key, info.size, info.modified, info.etag, hashes={"md5": md5})


class SpyStore(MemoryStore):
    """A restore target that records every call that could change it."""

    def __init__(self) -> None:
        super().__init__("target")
        self.calls: list[str] = []

    def ensure_root(self) -> None:
        self.calls.append("ensure_root")

    def write(self, key: str, source: Readable, *, metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        self.calls.append(f"write {key}")
        return super().write(key, source, metadata=metadata)


class CountingStore(MemoryStore):
    """A set store that counts writes per key."""

    def __init__(self, name: str = "set") -> None:
        super().__init__(name)
        self.writes: dict[str, int] = {}

    def write(self, key: str, source: Readable, *, metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        self.writes[key] = self.writes.get(key, 0) + 1
        return super().write(key, source, metadata=metadata)


def put(store: MemoryStore, objects: Mapping[str, bytes]) -> None:
    for key, data in objects.items():
        store.write(key, io.BytesIO(data))


def read(store: MemoryStore, key: str) -> bytes:
    with store.open_read(key) as reader:
        return reader.read()


def contents(store: MemoryStore) -> dict[str, bytes]:
    return {o.key: read(store, o.key) for o in store.list()}


def new_set(store: MemoryStore | None = None, *, key: bytes | None = None, compress: bool = False) -> BackupSet:
    env = {"K": base64.b64encode(key).decode()} if key else {}
    bset = open_or_create_set(
        store or MemoryStore("set"),
        KeySource(key_env="K" if key else None),
        env,
        NewSetOptions(compression=compress, encryption=key is not None),
        T0,
    )
    assert bset is not None
    return bset


class Clock:
    """``now`` for execute_copy: a fixed time that tests move on explicitly."""

    def __init__(self, start: datetime = T0) -> None:
        self.time = start

    def __call__(self) -> datetime:
        return self.time


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[CopyJournal]:
    j = CopyJournal(tmp_path / "state" / "journal.sqlite")
    yield j
    j.close()


def copy(
    source: MemoryStore,
    bset: BackupSet,
    mode: Mode,
    journal: CopyJournal,
    *,
    filters: Filters = NO_FILTERS,
    transfers: int = 4,
    now: Callable[[], datetime] | None = None,
) -> CopyResult:
    options = CopyOptions(mode=mode, filters=filters, transfers=transfers)
    plan = plan_copy(source, bset, options)
    if now is None:
        return execute_copy(plan, source, bset, options, journal)
    return execute_copy(plan, source, bset, options, journal, now=now)


def plan(source: MemoryStore, bset: BackupSet | None, mode: Mode, filters: Filters = NO_FILTERS) -> CopyPlan:
    return plan_copy(source, bset, CopyOptions(mode=mode, filters=filters))


def to_send(p: CopyPlan) -> list[str]:
    return [o.info.key for o in p.to_transfer]


def restored(bset: BackupSet, point_id: str | None = None) -> dict[str, bytes]:
    target = MemoryStore("restored")
    restore_point(bset, choose_point(bset, point_id, None), target)
    return contents(target)


# -- modes -----------------------------------------------------------------------------------------------------------


def test_full_sends_everything_and_the_point_lists_it_all(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    state = {"a": b"alpha", "b/c": b"gamma" * 100, "empty": b""}
    put(source, state)
    bset = new_set()
    result = copy(source, bset, "full", journal)
    assert (result.objects_transferred, result.objects_skipped, result.resumed_objects) == (3, 0, 0)
    assert result.bytes_transferred == sum(len(v) for v in state.values())
    point = bset.load_point(result.recovery_point)
    assert (point.mode, point.parent, point.source) == ("full", None, source.url)
    assert [e.key for e in point.objects] == sorted(state)
    assert point.totals == Totals(
        objects=3, bytes=505, objects_transferred=3, bytes_transferred=505, objects_unchanged=0
    )
    for entry in point.objects:
        assert entry.sha256 == hashlib.sha256(state[entry.key]).hexdigest()
        assert entry.written_by == point.id
    assert restored(bset) == state


def test_incremental_sends_new_and_changed_objects_and_forgets_deleted_ones(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"keep": b"k" * 10, "change": b"old", "delete": b"d"})
    bset = new_set()
    full = copy(source, bset, "full", journal)
    put(source, {"change": b"new!", "add": b"added"})
    source.delete("delete")

    p = plan(source, bset, "incremental")
    assert p.base_point is not None
    assert p.base_point.id == full.recovery_point
    assert to_send(p) == ["add", "change"]
    result = copy(source, bset, "incremental", journal)
    assert (result.objects_transferred, result.objects_skipped, result.bytes_transferred) == (2, 1, 9)
    point = bset.load_point(result.recovery_point)
    assert point.parent == full.recovery_point
    assert {e.key: e.written_by for e in point.objects} == {
        "add": point.id,
        "change": point.id,
        "keep": full.recovery_point,
    }
    assert restored(bset) == {"keep": b"k" * 10, "change": b"new!", "add": b"added"}
    assert restored(bset, full.recovery_point) == {"keep": b"k" * 10, "change": b"old", "delete": b"d"}


def test_differential_sends_everything_changed_since_the_last_full(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"a": b"1", "b": b"2", "c": b"3"})
    bset = new_set()
    full = copy(source, bset, "full", journal)
    put(source, {"a": b"1'"})
    incremental = copy(source, bset, "incremental", journal)
    put(source, {"b": b"2'"})

    assert to_send(plan(source, bset, "incremental")) == ["b"]
    p = plan(source, bset, "differential")
    assert p.base_point is not None
    assert p.base_point.id == full.recovery_point
    assert to_send(p) == ["a", "b"]
    differential = copy(source, bset, "differential", journal)
    assert (differential.objects_transferred, differential.objects_skipped) == (2, 1)
    point = bset.load_point(differential.recovery_point)
    assert (point.mode, point.parent) == ("differential", full.recovery_point)
    assert incremental.recovery_point not in {e.written_by for e in point.objects}
    assert restored(bset) == {"a": b"1'", "b": b"2'", "c": b"3"}

    # An incremental after a differential bases on the differential, the latest point of any mode.
    p = plan(source, bset, "incremental")
    assert p.base_point is not None
    assert p.base_point.id == differential.recovery_point
    assert to_send(p) == []


def test_an_incremental_with_nothing_changed_still_makes_a_complete_point(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"a": b"1", "b": b"2"})
    bset = new_set()
    copy(source, bset, "full", journal)
    result = copy(source, bset, "incremental", journal)
    assert (result.objects_transferred, result.objects_skipped, result.bytes_transferred) == (0, 2, 0)
    assert result.paths["unchanged"] == 2
    assert restored(bset, result.recovery_point) == {"a": b"1", "b": b"2"}


def test_same_bytes_rewritten_count_as_unchanged_only_when_a_native_hash_vouches_for_them(
    journal: CopyJournal,
) -> None:
    plain, azure_like = MemoryStore("plain"), AzureLikeStore("azure")
    for source in (plain, azure_like):
        put(source, {"a": b"same bytes", "b": b"x"})
    plain_set, azure_set = new_set(), new_set()
    copy(plain, plain_set, "full", journal)
    copy(azure_like, azure_set, "full", journal)
    for source in (plain, azure_like):
        put(source, {"a": b"same bytes", "b": b"y"})  # a: new etag, same bytes; b: same size, new bytes
    # Without a hash from the store, a new etag is a change: never trusted as "same" on a guess.
    assert to_send(plan(plain, plain_set, "incremental")) == ["a", "b"]
    # With the store's MD5, the same bytes are recognised; a same-size change is still a change.
    assert to_send(plan(azure_like, azure_set, "incremental")) == ["b"]


def test_a_new_set_takes_a_full_copy_first() -> None:
    source = MemoryStore("src")
    put(source, {"a": b"1"})
    modes: tuple[Mode, ...] = ("incremental", "differential")
    for mode in modes:
        with pytest.raises(InvalidInput, match=f"no backup set yet to base an? {mode} copy on; take a full copy"):
            plan(source, None, mode)


def test_a_differential_needs_a_full_point_still_in_the_set(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"a": b"1"})
    bset = new_set()
    copy(source, bset, "full", journal)
    put(source, {"a": b"2"})
    copy(source, bset, "incremental", journal)
    report = prune_set(bset, RetentionPolicy(keep_last=1), T0 + timedelta(days=1), timedelta(0))
    assert len(report.forgotten) == 1
    with pytest.raises(InvalidInput, match="no full recovery point of mem://src/ in mem://set/ to base a differential"):
        plan(source, bset, "differential")
    assert to_send(plan(source, bset, "incremental")) == []


# -- filters and empty sources ---------------------------------------------------------------------------------------


def test_filter_patterns() -> None:
    f = Filters(include=("db/*", "*.conf"), exclude=("*.tmp", "db/cache/*"))
    assert f.accept("db/dump.sql")
    assert f.accept("db/wal/0001")  # '*' crosses '/': a pattern is matched against the whole key
    assert f.accept("etc/app.conf")
    assert not f.accept("db/x.tmp")
    assert not f.accept("db/cache/page")
    assert not f.accept("logs/today")
    assert Filters(exclude=("*.tmp",)).accept("anything")
    assert NO_FILTERS.accept("anything/at/all")
    assert not Filters(include=("DB/*",)).accept("db/dump.sql"), "matching is case-sensitive"


def test_filters_choose_what_is_sent_and_what_the_point_holds(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"db/a.sql": b"a", "db/b.tmp": b"b", "logs/c": b"c"})
    bset = new_set()
    filters = Filters(include=("db/*",), exclude=("*.tmp",))
    result = copy(source, bset, "full", journal, filters=filters)
    assert result.objects_transferred == 1
    assert [e.key for e in bset.load_point(result.recovery_point).objects] == ["db/a.sql"]


def test_an_empty_source_is_refused_before_anything_is_written(journal: CopyJournal) -> None:
    bset_store = MemoryStore("set")
    bset = new_set(bset_store)
    before = contents(bset_store)
    with pytest.raises(InvalidInput, match=r"source mem://empty/ has no objects; nothing to back up"):
        plan(MemoryStore("empty"), bset, "full")
    source = MemoryStore("src")
    put(source, {"a.log": b"1"})
    with pytest.raises(InvalidInput, match="has no objects matching --include/--exclude"):
        plan(source, bset, "full", Filters(include=("*.sql",)))
    assert contents(bset_store) == before
    assert bset.point_ids() == []


def test_an_empty_source_is_reported_before_a_missing_base_point() -> None:
    # The base point is read while the source is listed; the source's problem still comes first.
    with pytest.raises(InvalidInput, match="source mem://empty/ has no objects"):
        plan(MemoryStore("empty"), new_set(), "incremental")
    source = MemoryStore("src")
    put(source, {"a": b"1"})
    with pytest.raises(InvalidInput, match="no recovery point of mem://src/ in mem://set/ to base an incremental"):
        plan(source, new_set(), "incremental")


# -- resume ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def crashed(journal: CopyJournal) -> tuple[FlakyStore, BackupSet, CountingStore, str]:
    """A full copy of ten objects that broke on the sixth: five are in the set and journalled, no point."""
    source = FlakyStore()
    put(source, {f"k{i:02d}": bytes([i]) * 100 for i in range(10)})
    set_store = CountingStore()
    bset = new_set(set_store)
    source.fail_on = "k05"
    with pytest.raises(Transient, match="connection reset"):
        copy(source, bset, "full", journal, transfers=1)
    source.fail_on = None
    run_id = journal.unfinished_run(bset.url, source.url, "full")
    assert run_id is not None
    return source, bset, set_store, run_id


def test_a_failed_copy_claims_no_point_and_journals_what_it_finished(
    crashed: tuple[FlakyStore, BackupSet, CountingStore, str], journal: CopyJournal
) -> None:
    _, bset, _, run_id = crashed
    assert bset.point_ids() == []
    assert sorted(journal.done_objects(run_id)) == [f"k{i:02d}" for i in range(5)]
    # No new object started after the failure.
    assert len(bset.blob_sizes()) == 5


def test_a_rerun_resumes_and_sends_only_what_is_left(
    crashed: tuple[FlakyStore, BackupSet, CountingStore, str], journal: CopyJournal
) -> None:
    source, bset, set_store, run_id = crashed
    written_before = dict(set_store.writes)
    result = copy(source, bset, "full", journal)
    # The point is minted when sealed, so a resumed run is the newest point, not dated by its first attempt.
    assert result.recovery_point != run_id
    assert bset.point_ids()[-1] == result.recovery_point
    assert (result.resumed_objects, result.objects_transferred, result.objects_skipped) == (5, 5, 5)
    assert result.bytes_transferred == 500
    assert result.paths == {"streamed": 5, "server-side": 0, "unchanged": 0, "resumed": 5}
    assert {k for k, v in result.object_paths.items() if v == "resumed"} == {f"k{i:02d}" for i in range(5)}
    resumed_blobs = [k for k in written_before if k.startswith(DATA_PREFIX)]
    assert len(resumed_blobs) == 5
    assert all(set_store.writes[k] == 1 for k in resumed_blobs), "a resumed blob is never sent again"
    assert journal.unfinished_run(bset.url, source.url, "full") is None
    assert journal.done_objects(run_id) == {}
    point = bset.load_point(result.recovery_point)
    assert point.totals.objects_transferred == 10
    assert {e.written_by for e in point.objects} == {point.id}
    assert restored(bset) == contents(source)


def test_resume_resends_journalled_objects_whose_blob_vanished_or_whose_source_changed(
    crashed: tuple[FlakyStore, BackupSet, CountingStore, str], journal: CopyJournal
) -> None:
    source, bset, set_store, run_id = crashed
    done = journal.done_objects(run_id)
    set_store.delete(blob_key(done["k01"].blob))
    put(source, {"k02": b"changed at the source"})
    result = copy(source, bset, "full", journal)
    assert result.resumed_objects == 3
    assert result.objects_transferred == 7
    assert result.bytes_transferred == 6 * 100 + len(b"changed at the source")
    assert restored(bset) == contents(source)


class VanishingStore(MemoryStore):
    """A set store that counts the stats and data listings a seal makes; with ``vanish_after`` set, the first
    blob written disappears once that many have been written, as if a prune on another host removed it."""

    def __init__(self) -> None:
        super().__init__("set")
        self.vanish_after: int | None = None
        self.blobs: list[str] = []
        self.stats = 0
        self.data_listings = 0
        self._writing = threading.local()

    def write(self, key: str, source: Readable, *, metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        self._writing.active = True  # the memory store's write answers with its own stat: not one of the seal's
        try:
            info = super().write(key, source, metadata=metadata)
        finally:
            self._writing.active = False
        if key.startswith(DATA_PREFIX):
            self.blobs.append(key)
            if len(self.blobs) == self.vanish_after:
                self.delete(self.blobs[0])
        return info

    def stat(self, key: str) -> ObjectInfo:
        if not getattr(self._writing, "active", False):
            self.stats += 1
        return super().stat(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if prefix == DATA_PREFIX:
            self.data_listings += 1
        return super().list(prefix)


def _set_on(store: VanishingStore, made_now: bool) -> BackupSet:
    bset = new_set(store)
    return bset if made_now else open_set(store, KeySource(), {})


@pytest.mark.parametrize("made_now", [True, False], ids=["set-made-by-this-run", "existing-set"])
def test_a_blob_gone_before_the_seal_fails_the_copy_and_no_point_claims_it(
    made_now: bool, journal: CopyJournal
) -> None:
    source = MemoryStore("src")
    put(source, {f"k{i:02d}": bytes([i]) * 10 for i in range(10)})
    store = VanishingStore()
    bset = _set_on(store, made_now)
    assert bset.made_now is made_now
    store.vanish_after = 10
    with pytest.raises(IntegrityError, match=r"k00's data .* is missing"):
        copy(source, bset, "full", journal, transfers=1)
    assert bset.point_ids() == []


@pytest.mark.parametrize(("made_now", "stats", "listings"), [(True, 0, 1), (False, 10, 0)])
def test_a_set_made_by_the_run_is_proven_by_one_listing_an_existing_one_by_a_stat_per_blob(
    made_now: bool, stats: int, listings: int, journal: CopyJournal
) -> None:
    source = MemoryStore("src")
    put(source, {f"k{i:02d}": bytes([i]) * 10 for i in range(10)})
    store = VanishingStore()
    bset = _set_on(store, made_now)
    copy(source, bset, "full", journal)
    assert (store.stats, store.data_listings) == (stats, listings)
    assert restored(bset) == contents(source)


def test_a_finished_run_or_another_mode_is_never_resumed(journal: CopyJournal) -> None:
    source = FlakyStore()
    put(source, {"a": b"1", "b": b"2"})
    bset = new_set()
    first = copy(source, bset, "full", journal)
    second = copy(source, bset, "full", journal)
    assert second.recovery_point != first.recovery_point
    assert second.resumed_objects == 0

    source.fail_on = "b"
    with pytest.raises(Transient):
        copy(source, bset, "full", journal, transfers=1)
    source.fail_on = None
    put(source, {"a": b"1'"})
    incremental = copy(source, bset, "incremental", journal)
    assert incremental.resumed_objects == 0
    assert journal.unfinished_run(bset.url, source.url, "full") is not None


def test_a_resumed_run_is_the_latest_point_once_it_finishes(journal: CopyJournal) -> None:
    clock = Clock()
    source = FlakyStore()
    put(source, {"a": b"v1", "b": b"v1"})
    bset = new_set()
    copy(source, bset, "full", journal, now=clock)
    clock.time = T0 + timedelta(hours=1)
    source.fail_on = "b"
    with pytest.raises(Transient):
        copy(source, bset, "full", journal, transfers=1, now=clock)  # e.g. the network dropped
    source.fail_on = None
    clock.time = T0 + timedelta(hours=2)
    copy(source, bset, "incremental", journal, now=clock)  # the hourly incremental runs meanwhile
    put(source, {"a": b"v2"})
    clock.time = T0 + timedelta(hours=3)
    resumed = copy(source, bset, "full", journal, now=clock)  # the full is re-run: it resumes
    assert resumed.resumed_objects == 0  # 'a' changed, so nothing was reusable; the run id still is
    assert bset.load_point(resumed.recovery_point).created == clock.time

    latest = choose_point(bset, None, None)
    assert latest.id == resumed.recovery_point
    assert restored(bset)["a"] == b"v2"
    assert choose_point(bset, None, clock.time).id == resumed.recovery_point


# -- manifests -------------------------------------------------------------------------------------------------------


def make_point(
    pid: str, created: datetime, objects: tuple[ObjectEntry, ...] = (), mode: Mode = "full"
) -> RecoveryPoint:
    return RecoveryPoint(
        id=pid,
        started=created,
        created=created,
        mode=mode,
        parent=None,
        source="mem://src/",
        drctl_version="test",
        compression=None,
        encryption=None,
        objects=objects,
        totals=Totals(objects=len(objects), bytes=0, objects_transferred=0, bytes_transferred=0, objects_unchanged=0),
        paths={},
    )


def make_entry(key: str, data: bytes = b"data") -> ObjectEntry:
    return ObjectEntry(
        key=key,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        blob=blob_id("mem://src/", key, len(data), None),
        stored_size=len(data),
        source_modified=T0,
        written_by="p1",
    )


def test_a_sealed_manifest_unseals_to_the_same_point() -> None:
    point = make_point("p1", T0, (make_entry("a"), make_entry("b/c", b"more")))
    assert unseal(seal(point, None), "p1", None) == point
    mac = os.urandom(32)
    assert unseal(seal(point, mac), "p1", mac) == point


@pytest.mark.parametrize(
    "edit",
    [
        lambda raw: raw.replace(b'"size":4', b'"size":5', 1),
        lambda raw: raw.replace(b'"key":"a"', b'"key":"z"', 1),
        lambda raw: raw.replace(b'"mode":"full"', b'"mode":"incremental"', 1),
    ],
    ids=["size", "key", "mode"],
)
def test_any_edit_of_a_manifest_is_detected(edit: Callable[[bytes], bytes]) -> None:
    raw = seal(make_point("p1", T0, (make_entry("a"),)), None)
    edited = edit(raw)
    assert edited != raw
    json.loads(edited)  # still well-formed: only the digest can tell
    with pytest.raises(IntegrityError, match="recovery point p1 in mem://set/ fails its checksum"):
        unseal(edited, "p1 in mem://set/", None)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b'{"digest": "00"}', b'{"point": {}, "digest": "00"}'],
    ids=["empty", "truncated", "not-an-object", "no-point", "invalid-point"],
)
def test_malformed_manifests_are_integrity_errors(raw: bytes) -> None:
    with pytest.raises(IntegrityError, match="recovery point p1 is not a valid manifest"):
        unseal(raw, "p1", None)


def test_a_manifest_needs_its_own_set_mac_key() -> None:
    point = make_point("p1", T0)
    with pytest.raises(IntegrityError, match="fails its checksum"):
        unseal(seal(point, os.urandom(32)), "p1", os.urandom(32))
    with pytest.raises(IntegrityError, match="fails its checksum"):
        unseal(seal(point, None), "p1", os.urandom(32))


def test_an_encrypted_sets_manifest_cannot_be_forged_by_recomputing_a_plain_digest(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"a": b"1"})
    set_store = MemoryStore("set")
    bset = new_set(set_store, key=os.urandom(32))
    result = copy(source, bset, "full", journal)
    doc = json.loads(read(set_store, point_key(result.recovery_point)))
    doc["point"]["objects"][0]["key"] = "forged"
    body = json.dumps(doc["point"], sort_keys=True, separators=(",", ":")).encode()
    doc["digest"] = hashlib.sha256(body).hexdigest()
    set_store.write(point_key(result.recovery_point), io.BytesIO(json.dumps(doc).encode()))
    with pytest.raises(IntegrityError, match=f"recovery point {result.recovery_point} in mem://set/ fails"):
        bset.load_point(result.recovery_point)


def test_an_unknown_point_is_not_found_and_names_the_known_ones(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"a": b"1"})
    bset = new_set()
    with pytest.raises(NotFound, match="the set has no recovery points yet"):
        bset.load_point("nope")
    result = copy(source, bset, "full", journal)
    with pytest.raises(
        NotFound, match=f"recovery point 'nope' is not in mem://set/; known points: {result.recovery_point}"
    ):
        bset.load_point("nope")


# -- choosing a point ------------------------------------------------------------------------------------------------


def test_choose_point_by_id_by_time_or_the_latest(journal: CopyJournal) -> None:
    clock = Clock()
    source = MemoryStore("src")
    bset = new_set()
    with pytest.raises(NotFound, match="has no recovery points yet"):
        choose_point(bset, None, None)
    ids = []
    for hour in range(3):
        clock.time = T0 + timedelta(hours=hour)
        put(source, {"a": str(hour).encode()})
        ids.append(copy(source, bset, "full" if hour == 0 else "incremental", journal, now=clock).recovery_point)
    assert choose_point(bset, None, None).id == ids[2]
    assert choose_point(bset, ids[0], None).id == ids[0]
    assert choose_point(bset, None, T0 + timedelta(minutes=90)).id == ids[1]
    assert choose_point(bset, None, T0 + timedelta(hours=1)).id == ids[1], "at or before: the exact time counts"
    assert choose_point(bset, None, T0 + timedelta(days=9)).id == ids[2]
    with pytest.raises(NotFound, match=f"no recovery point at or before .*; the oldest is {ids[0]}"):
        choose_point(bset, None, T0 - timedelta(seconds=1))


# -- retention -------------------------------------------------------------------------------------------------------

CREATED = {
    "mon-10": datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    "mon-18": datetime(2026, 3, 2, 18, 0, tzinfo=UTC),
    "tue-09": datetime(2026, 3, 3, 9, 0, tzinfo=UTC),
    "thu-12": datetime(2026, 3, 5, 12, 0, tzinfo=UTC),
    "next-mon-08": datetime(2026, 3, 9, 8, 0, tzinfo=UTC),
    "next-mon-20": datetime(2026, 3, 9, 20, 0, tzinfo=UTC),
    "mon-after-07": datetime(2026, 3, 16, 7, 0, tzinfo=UTC),
}


@pytest.fixture
def history() -> list[RecoveryPoint]:
    points = [make_point(pid, created) for pid, created in CREATED.items()]
    return points[3:] + points[:3]  # the policy must sort by time, not trust the order given


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        (RetentionPolicy(keep_last=2), {"mon-after-07", "next-mon-20"}),
        (RetentionPolicy(keep_last=99), set(CREATED)),
        (RetentionPolicy(keep_daily=3), {"mon-after-07", "next-mon-20", "thu-12"}),
        (RetentionPolicy(keep_weekly=2), {"mon-after-07", "next-mon-20"}),
        (RetentionPolicy(keep_weekly=3), {"mon-after-07", "next-mon-20", "thu-12"}),
        (RetentionPolicy(keep_last=1, keep_daily=2, keep_weekly=3), {"mon-after-07", "next-mon-20", "thu-12"}),
        (RetentionPolicy(keep_last=4, keep_weekly=3), {"mon-after-07", "next-mon-20", "next-mon-08", "thu-12"}),
        (RetentionPolicy(keep_daily=10), {"mon-after-07", "next-mon-20", "thu-12", "tue-09", "mon-18"}),
    ],
    ids=["last-2", "last-more-than-all", "daily-3", "weekly-2", "weekly-3", "union", "last-and-weekly", "daily-all"],
)
def test_retention_keeps_the_newest_point_of_each_period(
    history: list[RecoveryPoint], policy: RetentionPolicy, kept: set[str]
) -> None:
    assert policy.kept(history) == kept


def test_weeks_are_iso_weeks_across_the_new_year() -> None:
    # 2026-12-31 (Thursday) and 2027-01-01 (Friday) are both in ISO week 2026-W53.
    points = [
        make_point("dec-31", datetime(2026, 12, 31, 12, tzinfo=UTC)),
        make_point("jan-01", datetime(2027, 1, 1, 12, tzinfo=UTC)),
        make_point("jan-04", datetime(2027, 1, 4, 12, tzinfo=UTC)),  # Monday of 2027-W01
    ]
    assert RetentionPolicy(keep_weekly=2).kept(points) == {"jan-04", "jan-01"}
    assert RetentionPolicy(keep_daily=3).kept(points) == {"jan-04", "jan-01", "dec-31"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "prune needs a policy"),
        ({"keep_last": 0, "keep_daily": 0}, "prune needs a policy"),
        ({"keep_last": -1, "keep_daily": 3}, "cannot be negative"),
    ],
)
def test_a_policy_must_keep_something_and_never_negative(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        RetentionPolicy(**kwargs)


@pytest.fixture
def four_points(journal: CopyJournal) -> tuple[MemoryStore, BackupSet, list[str], list[dict[str, bytes]]]:
    """P1 full a,b,c; P2 changes a; P3 adds d; P4 changes b, deletes c."""
    source = MemoryStore("src")
    bset = new_set()
    states: list[dict[str, bytes]] = []
    ids: list[str] = []
    steps: list[tuple[dict[str, bytes], list[str]]] = [
        ({"a": b"a1", "b": b"b1", "c": b"c1"}, []),
        ({"a": b"a2"}, []),
        ({"d": b"d1"}, []),
        ({"b": b"b2"}, ["c"]),
    ]
    for i, (writes, deletes) in enumerate(steps):
        put(source, writes)
        for key in deletes:
            source.delete(key)
        ids.append(copy(source, bset, "full" if i == 0 else "incremental", journal).recovery_point)
        states.append(contents(source))
    return source, bset, ids, states


def test_prune_forgets_points_and_deletes_only_unreferenced_data(
    four_points: tuple[MemoryStore, BackupSet, list[str], list[dict[str, bytes]]],
) -> None:
    _, bset, ids, states = four_points
    points = {p.id: p for p in bset.points()}
    needed = {e.blob for pid in ids[2:] for e in points[pid].objects}
    doomed = set(bset.blob_sizes()) - needed
    assert len(doomed) == 1  # a as P1 wrote it; b and c as P1 wrote them are still needed by P3

    report = prune_set(bset, RetentionPolicy(keep_last=2), datetime.now(UTC) + timedelta(hours=2), timedelta(hours=1))
    assert (report.kept, report.forgotten) == (ids[2:], ids[:2])
    assert (report.blobs_deleted, report.bytes_freed, report.blobs_in_grace) == (1, 2, 0)
    assert bset.point_ids() == ids[2:]
    assert set(bset.blob_sizes()) == needed
    for pid, state in zip(ids[2:], states[2:], strict=True):
        assert restored(bset, pid) == state
    assert verify_set(bset, deep=True).ok


def test_prune_keeps_unreferenced_data_younger_than_the_grace_period(
    four_points: tuple[MemoryStore, BackupSet, list[str], list[dict[str, bytes]]],
) -> None:
    _, bset, ids, _ = four_points
    blobs = set(bset.blob_sizes())
    report = prune_set(bset, RetentionPolicy(keep_last=2), datetime.now(UTC), timedelta(hours=1))
    assert (report.blobs_deleted, report.blobs_in_grace) == (0, 1)
    assert bset.point_ids() == ids[2:], "points are forgotten even when their data is kept for now"
    assert set(bset.blob_sizes()) == blobs


def test_prune_dry_run_changes_nothing(
    four_points: tuple[MemoryStore, BackupSet, list[str], list[dict[str, bytes]]],
) -> None:
    _, bset, ids, _ = four_points
    before = contents(bset.store)  # type: ignore[arg-type]
    report = prune_set(bset, RetentionPolicy(keep_last=1), datetime.now(UTC) + timedelta(days=1), timedelta(0), True)
    assert (report.dry_run, report.forgotten, report.blobs_deleted) == (True, ids[:3], 3)
    assert contents(bset.store) == before  # type: ignore[arg-type]


# -- restore ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_key",
    ["../x", "a/../../etc/passwd", "/etc/passwd", "./a", "a/./b", "dir/..", "a\\..\\b", "nul\0byte"],
)
def test_restore_refuses_keys_that_would_escape_before_writing_anything(
    bad_key: str, journal: CopyJournal, tmp_path: Path
) -> None:
    source = MemoryStore("src")
    put(source, {"aaa-fine.txt": b"fine", bad_key: b"evil", "zzz-fine.txt": b"fine"})
    bset = new_set()
    result = copy(source, bset, "full", journal)
    target = LocalStore(tmp_path / "target")
    with pytest.raises(InvalidInput, match=r"holds key .* which would escape the target; nothing restored"):
        restore_point(bset, bset.load_point(result.recovery_point), target)
    assert not (tmp_path / "target").exists()


@pytest.mark.parametrize("key", ["logs/", "a//b"])
def test_every_key_copy_accepts_restores_into_an_object_store(key: str, journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {key: b"", "logs/today.log": b"x"})
    bset = new_set()
    result = copy(source, bset, "full", journal)
    target = MemoryStore("target")
    restore_point(bset, bset.load_point(result.recovery_point), target)
    assert contents(target) == contents(source)


def test_restore_refuses_a_broken_chain_before_writing_anything(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"a": b"1", "b": b"2", "c": b"3"})
    bset = new_set()
    full = copy(source, bset, "full", journal)
    put(source, {"c": b"3'"})
    incremental = copy(source, bset, "incremental", journal)
    point = bset.load_point(incremental.recovery_point)
    [b_entry] = [e for e in point.objects if e.key == "b"]
    assert b_entry.written_by == full.recovery_point
    bset.store.delete(blob_key(b_entry.blob))  # data an earlier link of the chain wrote is lost

    target = SpyStore()
    with pytest.raises(IntegrityError, match=rf"needs 'b', written by {full.recovery_point}.*chain is broken"):
        restore_point(bset, point, target)
    assert target.calls == []


def test_restore_refuses_a_blob_of_the_wrong_size_as_a_broken_chain(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"a": b"12345"})
    bset = new_set()
    result = copy(source, bset, "full", journal)
    [entry] = bset.load_point(result.recovery_point).objects
    bset.store.write(blob_key(entry.blob), io.BytesIO(b"123"))
    target = SpyStore()
    with pytest.raises(IntegrityError, match="chain is broken"):
        restore_point(bset, bset.load_point(result.recovery_point), target)
    assert target.calls == []


def test_restore_never_commits_a_corrupt_object(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"good": b"good bytes", "bad": b"original!!"})
    bset = new_set()
    result = copy(source, bset, "full", journal)
    [bad] = [e for e in bset.load_point(result.recovery_point).objects if e.key == "bad"]
    bset.store.write(blob_key(bad.blob), io.BytesIO(b"tampered!!"))  # same size
    target = MemoryStore("target")
    with pytest.raises(IntegrityError, match=r"'bad' of .* is corrupt: its SHA-256 does not match"):
        restore_point(bset, bset.load_point(result.recovery_point), target, workers=1)
    assert "bad" not in contents(target)


def test_restore_with_filters_restores_only_matching_objects(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"db/a": b"a", "db/b.tmp": b"b", "etc/c": b"c"})
    bset = new_set()
    result = copy(source, bset, "full", journal)
    target = MemoryStore("target")
    restore = restore_point(bset, bset.load_point(result.recovery_point), target, Filters(("db/*",), ("*.tmp",)))
    assert (restore.objects_restored, restore.bytes_restored) == (1, 1)
    assert contents(target) == {"db/a": b"a"}
    with pytest.raises(InvalidInput, match="has no objects matching --include/--exclude"):
        restore_point(bset, bset.load_point(result.recovery_point), target, Filters(("nothing*",)))


def test_parallel_writes_into_a_local_directory_never_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The interleaving that breaks restore's parallel writers, replayed deterministically: another writer
    completes between this writer's making of the temporary directory and its opening of its temporary file."""
    store = LocalStore(tmp_path / "target")
    real_open = Path.open
    interleaved = False

    def open_after_another_writer(self: Path, *args: Any, **kwargs: Any) -> Any:
        nonlocal interleaved
        if not interleaved and self.name.endswith(".drctl-part"):
            interleaved = True
            store.write("other", io.BytesIO(b"the other writer"))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_after_another_writer)
    store.write("mine", io.BytesIO(b"mine"))
    assert interleaved
    assert (tmp_path / "target" / "mine").read_bytes() == b"mine"


# -- verify ----------------------------------------------------------------------------------------------------------


def test_verify_reports_missing_corrupt_and_extra_data(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"a": b"aaaa", "b": b"bbbb", "c": b"cccc", "d": b"dddd"})
    bset = new_set()
    result = copy(source, bset, "full", journal)
    clean = verify_set(bset, deep=True)
    assert (clean.ok, clean.objects_checked, clean.bytes_read, clean.extra) == (True, 4, 16, [])
    entries = {e.key: e for e in bset.load_point(result.recovery_point).objects}
    bset.store.delete(blob_key(entries["a"].blob))
    bset.store.write(blob_key(entries["b"].blob), io.BytesIO(b"bb"))
    bset.store.write(blob_key(entries["c"].blob), io.BytesIO(b"CCCC"))
    bset.store.write(blob_key("f" * 64), io.BytesIO(b"orphan"))

    shallow = verify_set(bset)
    assert not shallow.ok
    assert [m.split()[0] for m in shallow.missing] == ["'a'"]
    assert shallow.corrupt == [f"'b' of {result.recovery_point}: stored size 2, recorded 4"]
    assert shallow.extra == ["f" * 64]
    deep = verify_set(bset, deep=True)
    assert len(deep.corrupt) == 2
    assert "'c'" in deep.corrupt[1]
    assert "SHA-256 does not match" in deep.corrupt[1]
    assert verify_set(bset, [result.recovery_point]).extra == [], "extra data is judged only against all points"


def test_a_compressed_set_finds_every_flip_of_its_stored_bytes_even_those_zstd_decodes_alike(
    journal: CopyJournal,
) -> None:
    """Some flips of a zstd frame header decode to the same bytes (for an empty object most values of its
    descriptor byte do), so the plaintext hash alone misses them; the recorded stored hash must not."""
    source = MemoryStore("src")
    put(source, {"empty": b"", "text": b"line of text\n" * 500})
    bset = new_set(compress=True)
    result = copy(source, bset, "full", journal)
    entries = {e.key: e for e in bset.load_point(result.recovery_point).objects}
    assert all(e.stored_sha256 is not None for e in entries.values())
    for key, entry in entries.items():
        with bset.store.open_read(blob_key(entry.blob)) as reader:
            original = reader.read()
        for position in range(min(len(original), 8)):
            for mask in range(1, 256):
                damaged = bytearray(original)
                damaged[position] ^= mask
                bset.store.write(blob_key(entry.blob), io.BytesIO(bytes(damaged)))
                report = verify_set(bset, deep=True)
                assert not report.ok, f"{key}: byte {position} ^ {mask:#04x} went unnoticed"
        bset.store.write(blob_key(entry.blob), io.BytesIO(original))
    assert verify_set(bset, deep=True).ok


def test_an_entry_without_a_stored_hash_keeps_its_document_and_digest() -> None:
    """Points written before stored hashes (and every entry of a set that does not record one) serialise
    exactly as before, so their digests still hold."""
    entry = ObjectEntry(
        key="k", size=1, sha256="a" * 64, blob="b" * 64, stored_size=1, source_modified=T0, written_by="p"
    )
    assert "stored_sha256" not in entry.to_json()
    assert "stored_sha256" in entry.model_copy(update={"stored_sha256": "c" * 64}).to_json()


# -- sets and encryption ---------------------------------------------------------------------------------------------


def test_an_encrypted_compressed_set_round_trips_and_stores_no_plaintext(journal: CopyJournal) -> None:
    key = os.urandom(32)
    source = MemoryStore("src")
    marker = b"PLAINTEXT-MARKER"
    state = {"text": marker * 5000, "bin": os.urandom(70_000), "empty": b""}
    put(source, state)
    set_store = MemoryStore("set")
    bset = new_set(set_store, key=key, compress=True)
    result = copy(source, bset, "full", journal)
    for k, v in contents(set_store).items():
        assert marker not in v, k
        assert key not in v, k
        assert base64.b64encode(key) not in v, k
    assert restored(bset) == state
    assert result.bytes_transferred == sum(len(v) for v in state.values())

    env = {"K": base64.b64encode(os.urandom(32)).decode()}
    with pytest.raises(WrongKey, match="wrong key for this backup set"):
        open_set(set_store, KeySource(key_env="K"), env)
    with pytest.raises(WrongKey, match="this backup set is encrypted"):
        open_set(set_store, KeySource(), {})
    reopened = open_set(set_store, KeySource(key_env="K"), {"K": key.hex()})
    assert restored(reopened) == state


def test_set_settings_are_chosen_once(journal: CopyJournal) -> None:
    plain = MemoryStore("set")
    new_set(plain)
    with pytest.raises(InvalidInput, match="is an unencrypted set; encryption is chosen when a set is made"):
        open_or_create_set(plain, KeySource(key_env="K"), {"K": "x" * 32}, NewSetOptions(encryption=True), T0)
    with pytest.raises(InvalidInput, match="is an uncompressed set"):
        open_or_create_set(plain, KeySource(), {}, NewSetOptions(compression=True), T0)


def test_a_location_with_other_objects_is_not_made_into_a_set() -> None:
    store = MemoryStore("busy")
    put(store, {"someone-elses.txt": b"x"})
    with pytest.raises(InvalidInput, match="holds objects but is not a backup set; choose an empty location"):
        open_or_create_set(store, KeySource(), {}, NewSetOptions(), T0)
    assert contents(store) == {"someone-elses.txt": b"x"}
    with pytest.raises(NotFound, match=f"is not a backup set \\(no {CONFIG_KEY}\\)"):
        open_set(store, KeySource(), {})


def test_a_set_that_lost_its_settings_file_is_named_as_such_and_left_as_it_is() -> None:
    """Found by the chaos suite: Azurite restarted mid-copy lost drctl-set.json but kept data blobs, and the
    rerun said "not a backup set; choose an empty location", which sends the user to the wrong fix."""
    store = MemoryStore("lost")
    put(store, {"data/ab/ab12": b"blob", "zz-other.txt": b"x"})
    with pytest.raises(InvalidInput, match=f"holds a backup set's data but its {CONFIG_KEY} is missing; restore"):
        open_or_create_set(store, KeySource(), {}, NewSetOptions(), T0)
    assert contents(store) == {"data/ab/ab12": b"blob", "zz-other.txt": b"x"}  # no new settings file over the data


def test_a_dry_run_makes_no_set() -> None:
    store = MemoryStore("fresh")
    assert open_or_create_set(store, KeySource(), {}, NewSetOptions(), T0, create=False) is None
    assert contents(store) == {}


# -- journal ---------------------------------------------------------------------------------------------------------


def test_state_dir_precedence(tmp_path: Path) -> None:
    assert state_dir({"DRCTL_STATE_DIR": "/s", "XDG_STATE_HOME": "/x"}) == Path("/s")
    assert state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/drctl")
    assert state_dir({}) == Path.home() / ".local" / "state" / "drctl"


@pytest.mark.parametrize("damage", ["newer-schema", "not-a-database"])
def test_an_unusable_journal_is_a_one_line_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "journal.sqlite"
    if damage == "newer-schema":
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version=2")
        db.commit()
        db.close()
    else:
        path.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(DrError):
        CopyJournal(path)
