"""Sharded copies over in-memory stores and local directories: which keys a shard owns, ``--shard`` parsing,
shard manifests and their seal into one recovery point (or the seal's refusals), resume per shard, prune while
shards wait for their seal, and ``backup.copy`` with ``shards: N`` through the executor. Times are fixed where
the logic depends on them."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import random
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Self

import pytest

from orchestrator import cli
from orchestrator.actions import backup_copy
from orchestrator.backup.copy import CopyOptions, CopyResult, execute_copy, plan_copy
from orchestrator.backup.crypto import KeySource
from orchestrator.backup.journal import CopyJournal
from orchestrator.backup.layout import blob_key
from orchestrator.backup.manifest import Mode, RecoveryPoint, Totals
from orchestrator.backup.prune import RetentionPolicy, prune_set
from orchestrator.backup.restore import restore_point
from orchestrator.backup.seal import SealResult, pending_parts, seal_shards
from orchestrator.backup.sets import BackupSet, open_set
from orchestrator.backup.shard_progress import CHECKPOINT_S, progress_key
from orchestrator.backup.shards import (
    DEFAULT_GROUP,
    MAX_SHARDS,
    SHARDS_PREFIX,
    Shard,
    ShardManifest,
    check_group,
    parse_shard,
    shard_manifest_key,
    unseal_shard,
)
from orchestrator.backup.verify import verify_set
from orchestrator.engine.executor import Executor, RunOptions
from orchestrator.engine.journal import RunJournal, RunStatus
from orchestrator.errors import ExitCode, IntegrityError, InvalidInput, NotFound, Transient
from orchestrator.providers.base import ObjectReader
from orchestrator.providers.local import LocalStore
from orchestrator.providers.memory import MemoryStore
from orchestrator.runbook.loader import load_runbook
from tests.support.backup import read_store, read_tree
from tests.support.cli import assert_one_line_error, process_env
from tests.support.cli import drctl as run_drctl
from tests.unit.test_backup_engine import (
    T0,
    Clock,
    FlakyStore,
    VanishingStore,
    contents,
    copy,
    new_set,
    put,
    read,
    restored,
)
from tests.unit.test_executor_actions import run as run_runbook

REPO = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))  # a fixed key: what is under test is the seal, not the key
SET_URL = "mem://set/"


# -- fakes and helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[CopyJournal]:
    # As test_backup_engine's: a fixture imported under its own name would be redefined by every test using it.
    j = CopyJournal(tmp_path / "state" / "journal.sqlite")
    yield j
    j.close()


class ReadCountingStore(FlakyStore):
    """A source that can break on ``fail_on`` (as ``FlakyStore``) and counts the reads that got through."""

    def __init__(self, name: str = "src") -> None:
        super().__init__(name)
        self.reads: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def open_read(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        reader = super().open_read(key, start, length)
        with self._count_lock:
            self.reads[key] += 1
        return reader


class StickyManifestStore(MemoryStore):
    """A set store whose shard manifests cannot be deleted while ``refuse`` is set, as when a seal's clean-up
    meets a network failure (or the seal dies) right after the point is written."""

    def __init__(self) -> None:
        super().__init__("set")
        self.refuse = False

    def delete(self, key: str) -> None:
        if self.refuse and key.startswith(SHARDS_PREFIX):
            raise Transient(f"{self.url}{key}: connection reset (simulated)")
        super().delete(key)


class AtT0(datetime):
    """``now`` for a MemoryStore: every object it holds is dated T0, however long the test takes."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> Self:
        return cls(2026, 3, 2, 9, 0, tzinfo=UTC)


def mixed_objects(n: int = 60) -> dict[str, bytes]:
    """``n`` objects of mixed sizes (a quarter of them empty), compressible and not, under varied key shapes."""
    rng = random.Random(20260302)
    sizes = (0, 1, 17, 0, 1000, 4096, 65_537, 200_000)
    shapes = ("db/dump-{i:03d}.sql", "logs/2026/03/02/{i:06d}.log", "médias/ünïcødé-{i}.bin", "{i}", "deep/a/b/{i}")
    objects: dict[str, bytes] = {}
    for i in range(n):
        key, size = shapes[i % len(shapes)].format(i=i), sizes[i % len(sizes)]
        objects[key] = rng.randbytes(size) if i % 2 else (f"{key} line\n".encode() * size)[:size]
    assert len(objects) == n
    return objects


def copy_shard(
    source: MemoryStore,
    bset: BackupSet,
    shard: Shard,
    journal: CopyJournal,
    *,
    mode: Mode = "full",
    started: datetime = T0,
    transfers: int = 4,
    clock: Callable[[], float] = lambda: 0.0,
) -> CopyResult:
    """One shard's ``drctl backup copy --shard``: its source listing is dated ``started``. The monotonic
    ``clock`` stands still unless given, so no progress checkpoint is ever due, however slow the machine."""
    options = CopyOptions(mode=mode, transfers=transfers, shard=shard)
    plan = plan_copy(source, bset, options, now=lambda: started)
    return execute_copy(plan, source, bset, options, journal, now=lambda: started + timedelta(seconds=30), clock=clock)


def copy_shards(
    source: MemoryStore,
    bset: BackupSet,
    count: int,
    journal: CopyJournal,
    *,
    mode: Mode = "full",
    group: str = DEFAULT_GROUP,
    started: datetime = T0,
) -> list[CopyResult]:
    return [
        copy_shard(source, bset, Shard(i, count, group), journal, mode=mode, started=started + timedelta(seconds=i))
        for i in range(count)
    ]


def manifests(store: MemoryStore) -> dict[str, bytes]:
    return read_store(store, SHARDS_PREFIX)


def by_key(point: RecoveryPoint) -> dict[str, tuple[int, str, str]]:
    return {e.key: (e.size, e.sha256, e.blob) for e in point.objects}


def slice_of(keys: list[str], shard: Shard) -> list[str]:
    return sorted(k for k in keys if shard.owns(k))


def manifest_url(index: int, count: int, group: str = DEFAULT_GROUP) -> str:
    return f"{SET_URL}{shard_manifest_key(group, index, count)}"


# -- which keys a shard owns -----------------------------------------------------------------------------------------


def varied_keys() -> list[str]:
    keys = [str(i) for i in range(1000)]  # sequential ids
    keys += [f"logs/2026/03/{d:02d}/{i:06d}.log.gz" for d in range(1, 11) for i in range(100)]  # one big prefix
    keys += [f"данные/ключ-{i}" for i in range(300)] + [f"日本語/ファイル{i}.txt" for i in range(300)]
    keys += [f"📦/{i}/é" for i in range(200)] + [f"bad-name-\udcff{i}" for i in range(50)]  # lone surrogates
    keys += ["", "/", "a", "a/", "a//b", " ", "\t", "x" * 1024]
    assert len(set(keys)) == len(keys)
    return keys


@pytest.mark.parametrize("count", range(1, 9))
def test_every_key_is_owned_by_exactly_one_shard_and_always_the_same(count: int) -> None:
    keys = varied_keys()
    shards = [Shard(i, count) for i in range(count)]
    owners: dict[str, int] = {}
    for key in keys:
        owning = [s.index for s in shards if s.owns(key)]
        assert len(owning) == 1, (key, owning)
        owners[key] = owning[0]
    fresh = {key: next(i for i in range(count) if Shard(i, count).owns(key)) for key in keys}
    assert fresh == owners
    if count > 1:
        assert len(set(owners.values())) == count, "every shard gets some of a few thousand keys"


def test_ownership_is_the_same_in_another_process_whatever_its_hash_seed() -> None:
    """Each pod of a batch engine decides for itself which keys it copies: a per-process hash would leave
    some keys to no shard and give others to two."""
    keys = varied_keys()
    ours = [next(i for i in range(7) if Shard(i, 7).owns(k)) for k in keys]
    code = (
        "import json, sys\n"
        "from orchestrator.backup.shards import Shard\n"
        "keys = json.load(sys.stdin)\n"
        "print(json.dumps([next(i for i in range(7) if Shard(i, 7).owns(k)) for k in keys]))\n"
    )
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(keys),
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=60,
        )
        assert json.loads(done.stdout) == ours, f"PYTHONHASHSEED={seed}"


def test_sequential_keys_spread_evenly_over_four_shards() -> None:
    keys = [f"{i}" for i in range(10_000)]
    sizes = [sum(1 for k in keys if Shard(i, 4).owns(k)) for i in range(4)]
    assert sum(sizes) == 10_000
    for size in sizes:
        assert abs(size - 2500) <= 250, sizes


# -- --shard and --shard-group ---------------------------------------------------------------------------------------


def test_parse_shard_accepts_an_index_from_zero_over_a_count() -> None:
    assert parse_shard("0/4") == Shard(0, 4, DEFAULT_GROUP)
    assert parse_shard(" 3 / 4 ") == Shard(3, 4, DEFAULT_GROUP)
    assert parse_shard("0/1") == Shard(0, 1)
    assert parse_shard(f"{MAX_SHARDS - 1}/{MAX_SHARDS}") == Shard(MAX_SHARDS - 1, MAX_SHARDS)
    assert parse_shard("1/2", "job-42.attempt_1") == Shard(1, 2, "job-42.attempt_1")
    assert parse_shard("1/2", "g" * 128).group == "g" * 128
    assert Shard(2, 4, "nightly").label == "2/4"
    assert Shard(2, 4, "nightly").manifest_key == "shards/nightly/2-of-4.json"


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("4/4", "the index counts from 0, so it must be below 4"),
        ("9/4", "must be below 4"),
        ("-1/4", "give the shard's index from 0 and the number of shards, e.g. 0/4"),
        ("1/0", f"must be between 1 and {MAX_SHARDS}, got 0"),
        ("a/b", "is not I/N; give the shard's index from 0"),
        ("1/10001", f"must be between 1 and {MAX_SHARDS}, got 10001"),
        ("", "is not I/N"),
        ("1", "is not I/N"),
        ("1/2/3", "is not I/N"),
        ("1.0/2", "is not I/N"),
        ("0x1/4", "is not I/N"),
    ],
)
def test_parse_shard_refuses_and_names_the_fix(text: str, fix: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(fix)):
        parse_shard(text)


@pytest.mark.parametrize("group", ["a/b", "..", "../x", "x/../y", "", ".", ".hidden", "-x", "a b", "é", "g" * 129])
def test_a_shard_group_that_is_not_a_plain_name_is_refused(group: str) -> None:
    fix = "use up to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
    with pytest.raises(InvalidInput, match=re.escape(fix)):
        parse_shard("0/2", group)
    with pytest.raises(InvalidInput, match=re.escape(fix)):
        check_group(group)
    with pytest.raises(InvalidInput, match=re.escape(fix)):
        seal_shards(new_set(), 2, group, T0)


@pytest.mark.parametrize("count", [0, -1, MAX_SHARDS + 1])
def test_a_seal_of_an_impossible_count_is_refused(count: int) -> None:
    with pytest.raises(InvalidInput, match=f"--shards must be between 1 and {MAX_SHARDS}, got {count}"):
        seal_shards(new_set(), count, DEFAULT_GROUP, T0)


# -- the seal makes the point a single copy would ---------------------------------------------------------------------


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted-compressed"])
def test_four_sealed_shards_equal_one_full_copy(encrypted: bool, journal: CopyJournal) -> None:
    source = MemoryStore("src")
    state = mixed_objects()
    put(source, state)
    key = KEY if encrypted else None
    single_set = new_set(MemoryStore("single"), key=key, compress=encrypted)
    single = single_set.load_point(copy(source, single_set, "full", journal).recovery_point)

    set_store = MemoryStore("set")
    bset = new_set(set_store, key=key, compress=encrypted)
    listed_at = {0: 5, 1: 2, 2: 1, 3: 4}  # minutes after T0: shard 2 listed the source first
    results = [
        copy_shard(source, bset, Shard(i, 4), journal, started=T0 + timedelta(minutes=listed_at[i])) for i in range(4)
    ]
    assert bset.point_ids() == [], "shards alone make no recovery point"
    assert sorted(manifests(set_store)) == [f"shards/default/{i}-of-4.json" for i in range(4)]
    assert sum(r.objects_transferred for r in results) == len(state)
    assert [r.shard for r in results] == [Shard(i, 4) for i in range(4)]
    assert all(r.summary()["recovery_point"] is None for r in results), "a shard's summary names no point"

    sealed_at = T0 + timedelta(hours=1)
    result = seal_shards(bset, 4, DEFAULT_GROUP, sealed_at)
    point = result.point
    assert (result.shards, result.already_sealed, result.leftovers) == (4, False, ())
    assert bset.point_ids() == [point.id]
    assert bset.load_point(point.id) == point
    assert manifests(set_store) == {}, "the seal removes the shard manifests"

    assert by_key(point) == by_key(single)
    assert [e.key for e in point.objects] == [e.key for e in single.objects]
    assert {e.written_by for e in point.objects} == {point.id}, "no entry names a shard's run"
    assert {e.key: e.sha256 for e in point.objects} == {k: hashlib.sha256(v).hexdigest() for k, v in state.items()}
    assert (point.mode, point.parent, point.source) == ("full", None, source.url)
    assert (point.compression, point.encryption) == (single.compression, single.encryption)
    assert (point.compression is not None, point.encryption is not None) == (encrypted, encrypted)
    assert point.started == T0 + timedelta(minutes=1), "the data is at least as recent as the earliest listing"
    assert point.created == sealed_at
    total = sum(len(v) for v in state.values())
    assert point.totals == Totals(
        objects=len(state), bytes=total, objects_transferred=len(state), bytes_transferred=total, objects_unchanged=0
    )
    assert point.totals == single.totals
    assert point.paths == single.paths == {"streamed": len(state), "server-side": 0, "unchanged": 0}
    assert sum(r.bytes_transferred for r in results) == total
    assert restored(bset, point.id) == state
    report = verify_set(bset, deep=True)
    assert (report.ok, report.objects_checked, report.extra) == (True, len(state), [])
    if encrypted:
        assert open_set(set_store, KeySource(key_env="K"), {"K": KEY.hex()}).load_point(point.id) == point


# -- the seal refuses, and writes no point ---------------------------------------------------------------------------


@pytest.fixture
def four_shards(journal: CopyJournal) -> tuple[MemoryStore, MemoryStore, BackupSet]:
    """A source of 60 objects copied by four shards of group 'default' into a plain set, not sealed yet."""
    source = MemoryStore("src")
    put(source, mixed_objects())
    set_store = MemoryStore("set")
    bset = new_set(set_store)
    copy_shards(source, bset, 4, journal)
    return source, set_store, bset


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ({2}, "shard 2 of 4 (group 'default') has not finished: no shard manifest in mem://set/"),
        ({0, 3}, "shards 0, 3 of 4 (group 'default') have not finished"),
        ({0, 1, 2}, "shards 0, 1, 2 of 4 (group 'default') have not finished"),
    ],
)
def test_a_seal_with_shards_missing_names_them_and_writes_no_point(
    four_shards: tuple[MemoryStore, MemoryStore, BackupSet], missing: set[int], message: str
) -> None:
    _, set_store, bset = four_shards
    for index in missing:
        set_store.delete(shard_manifest_key(DEFAULT_GROUP, index, 4))
    before = manifests(set_store)
    with pytest.raises(NotFound, match=re.escape(message) + r".*Run them again \(each resumes where it stopped\)"):
        seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert bset.point_ids() == []
    assert manifests(set_store) == before, "the finished shards' manifests are kept for the next seal"


def test_a_seal_with_many_shards_missing_names_the_first_twenty(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, {"a": b"1", "b": b"2"})
    bset = new_set()
    copy_shard(source, bset, Shard(5, 30), journal)
    names = ", ".join(str(i) for i in [*range(5), *range(6, 21)])
    with pytest.raises(NotFound, match=re.escape(f"shards {names} and 9 more of 30 (group 'default') have not")):
        seal_shards(bset, 30, DEFAULT_GROUP, T0)
    assert bset.point_ids() == []


def test_a_seal_with_no_shard_finished_says_so(
    four_shards: tuple[MemoryStore, MemoryStore, BackupSet],
) -> None:
    _, _, bset = four_shards
    with pytest.raises(NotFound, match="no shard of group 'nightly' has finished in mem://set/: run the shards"):
        seal_shards(bset, 4, "nightly", T0)
    empty = new_set(MemoryStore("empty-set"))
    with pytest.raises(NotFound, match=r"no shard of group 'default' has finished .*--shard I/4 --shard-group default"):
        seal_shards(empty, 4, DEFAULT_GROUP, T0)
    assert bset.point_ids() == []
    assert empty.point_ids() == []


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_a_seal_with_another_count_than_the_shards_is_refused(
    four_shards: tuple[MemoryStore, MemoryStore, BackupSet], count: int
) -> None:
    _, set_store, bset = four_shards
    before = manifests(set_store)
    with pytest.raises(InvalidInput, match=f"holds shards of a 4-way copy, not {count}-way; seal with the --shards"):
        seal_shards(bset, count, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert bset.point_ids() == []
    assert manifests(set_store) == before
    assert seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=1)).shards == 4, "the right count still seals"


def flip_hex(raw: bytes, value: str) -> bytes:
    """``raw`` with the first hex digit of ``value`` (found in it) changed to another hex digit: one byte."""
    at = raw.index(value.encode())
    return raw[:at] + (b"1" if raw[at : at + 1] == b"0" else b"0") + raw[at + 1 :]


def flip_size(raw: bytes) -> bytes:
    """``raw`` with the last digit of the first object's size changed: one byte, still valid JSON."""
    at = raw.index(b'"size": ') + len(b'"size": ')
    while raw[at + 1 : at + 2].isdigit():
        at += 1
    return raw[:at] + (b"7" if raw[at : at + 1] != b"7" else b"8") + raw[at + 1 :]


def _first_sha(raw: bytes) -> str:
    sha: str = json.loads(raw)["manifest"]["point"]["objects"][0]["sha256"]
    return sha


def rewritten(raw: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """A shard manifest changed by ``edit`` (of its ``point``) and given a plain SHA-256 of its canonical body:
    a plain set's digest, which anyone who can write to the set can make (for an encrypted set, without its key)."""
    doc = json.loads(raw)
    edit(doc["manifest"]["point"])
    body = json.dumps(doc["manifest"], sort_keys=True, separators=(",", ":")).encode()
    return json.dumps({"digest": hashlib.sha256(body).hexdigest(), "manifest": doc["manifest"]}).encode()


def test_a_shard_manifest_claiming_another_shards_key_is_refused(
    four_shards: tuple[MemoryStore, MemoryStore, BackupSet],
) -> None:
    _, set_store, bset = four_shards
    raws = {i: read(set_store, shard_manifest_key(DEFAULT_GROUP, i, 4)) for i in range(4)}
    stolen = json.loads(raws[2])["manifest"]["point"]["objects"][0]

    def claim(point: dict[str, Any]) -> None:
        point["objects"] = sorted([*point["objects"], stolen], key=lambda e: str(e["key"]))

    forged = rewritten(raws[1], claim)
    assert (
        len(unseal_shard(forged, "1-of-4", None).point.objects)
        == len(json.loads(raws[1])["manifest"]["point"]["objects"]) + 1
    )
    set_store.write(shard_manifest_key(DEFAULT_GROUP, 1, 4), io.BytesIO(forged))
    with pytest.raises(
        IntegrityError, match=re.escape(f"shard 1/4 lists {stolen['key']!r}, which is not in its slice")
    ):
        seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert bset.point_ids() == []


def test_shard_manifests_of_another_encoding_than_the_sets_are_refused(
    four_shards: tuple[MemoryStore, MemoryStore, BackupSet],
) -> None:
    _, set_store, bset = four_shards

    def compressed(point: dict[str, Any]) -> None:
        point["compression"] = "zstd"

    for index in range(4):
        key = shard_manifest_key(DEFAULT_GROUP, index, 4)
        set_store.write(key, io.BytesIO(rewritten(read(set_store, key), compressed)))
    with pytest.raises(IntegrityError, match="the shard manifests in mem://set/ do not match the set's encoding"):
        seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert bset.point_ids() == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda raw: flip_hex(raw, _first_sha(raw)), "fails its checksum: it was edited or corrupted"),
        (flip_size, "fails its checksum"),
        (lambda raw: flip_hex(raw, json.loads(raw)["digest"]), "fails its checksum"),
        (lambda raw: raw.replace(b'"mode": "full"', b'"mode": "fulL"', 1), "is not valid"),
        (lambda raw: raw[:-1], "is not valid"),
        (lambda raw: b"\xff" + raw[1:], "is not valid"),
    ],
    ids=["object-hash", "object-size", "digest", "mode", "truncated", "not-utf8"],
)
def test_a_shard_manifest_changed_in_the_set_is_refused_by_name(
    four_shards: tuple[MemoryStore, MemoryStore, BackupSet], edit: Callable[[bytes], bytes], problem: str
) -> None:
    _, set_store, bset = four_shards
    key = shard_manifest_key(DEFAULT_GROUP, 1, 4)
    raw = read(set_store, key)
    damaged = edit(raw)
    assert damaged != raw
    assert len(damaged) >= len(raw) - 1
    set_store.write(key, io.BytesIO(damaged))
    before = manifests(set_store)
    url = re.escape(manifest_url(1, 4))
    with pytest.raises(IntegrityError, match=rf"shard manifest {url} {problem}.*run that shard again"):
        seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert bset.point_ids() == []
    assert manifests(set_store) == before


def test_an_encrypted_sets_shard_manifest_cannot_be_forged_with_a_plain_digest(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, mixed_objects(20))
    set_store = MemoryStore("set")
    bset = new_set(set_store, key=KEY)
    assert bset.keys is not None
    copy_shards(source, bset, 2, journal)
    key = shard_manifest_key(DEFAULT_GROUP, 1, 2)

    def zero_hash(point: dict[str, Any]) -> None:
        point["objects"][0]["sha256"] = "0" * 64

    forged = rewritten(read(set_store, key), zero_hash)
    # The forgery is well made: without a MAC key (a plain set) it would pass.
    assert unseal_shard(forged, "forged", None).point.objects[0].sha256 == "0" * 64
    with pytest.raises(IntegrityError, match="fails its checksum"):
        unseal_shard(forged, "forged", bset.keys.mac_key)
    set_store.write(key, io.BytesIO(forged))
    with pytest.raises(IntegrityError, match=rf"shard manifest {re.escape(manifest_url(1, 2))} fails its checksum"):
        seal_shards(bset, 2, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert bset.point_ids() == []
    # Even unchanged, a manifest re-digested without the key is not the set's.
    set_store.write(key, io.BytesIO(rewritten(read(set_store, key), lambda point: None)))
    with pytest.raises(IntegrityError, match="fails its checksum"):
        seal_shards(bset, 2, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert bset.point_ids() == []


def test_a_shard_manifest_from_another_set_is_refused(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, mixed_objects(20))
    other_store, set_store = MemoryStore("other"), MemoryStore("set")
    other = new_set(other_store, key=bytes(32))
    bset = new_set(set_store, key=KEY)
    copy_shards(source, other, 2, journal, started=T0)
    copy_shards(source, bset, 2, journal, started=T0 + timedelta(hours=1))
    key = shard_manifest_key(DEFAULT_GROUP, 0, 2)
    set_store.write(key, io.BytesIO(read(other_store, key)))
    with pytest.raises(IntegrityError, match=rf"shard manifest {re.escape(manifest_url(0, 2))} fails its checksum"):
        seal_shards(bset, 2, DEFAULT_GROUP, T0 + timedelta(hours=2))
    assert bset.point_ids() == []


def test_a_shard_manifest_under_another_shards_name_is_refused(
    four_shards: tuple[MemoryStore, MemoryStore, BackupSet],
) -> None:
    _, set_store, bset = four_shards
    raw = read(set_store, shard_manifest_key(DEFAULT_GROUP, 1, 4))
    set_store.write(shard_manifest_key(DEFAULT_GROUP, 2, 4), io.BytesIO(raw))
    with pytest.raises(
        IntegrityError,
        match=re.escape(f"{manifest_url(2, 4)} describes shard 1/4 of group 'default', not its name's; run shard 2/4"),
    ):
        seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert bset.point_ids() == []


def test_shard_manifests_under_another_groups_name_are_refused(
    four_shards: tuple[MemoryStore, MemoryStore, BackupSet],
) -> None:
    _, set_store, bset = four_shards
    for index in range(4):
        raw = read(set_store, shard_manifest_key(DEFAULT_GROUP, index, 4))
        set_store.write(shard_manifest_key("copied", index, 4), io.BytesIO(raw))
    with pytest.raises(IntegrityError, match=re.escape("describes shard 0/4 of group 'default', not its name's")):
        seal_shards(bset, 4, "copied", T0 + timedelta(hours=1))
    assert bset.point_ids() == []


def test_shards_of_different_sources_do_not_seal(journal: CopyJournal) -> None:
    source, other = MemoryStore("src"), MemoryStore("other")
    put(source, mixed_objects(30))
    put(other, mixed_objects(30))
    set_store = MemoryStore("set")
    bset = new_set(set_store)
    for index in range(4):
        copy_shard(other if index == 3 else source, bset, Shard(index, 4), journal)
    with pytest.raises(
        InvalidInput,
        match=re.escape(
            "shards of one copy disagree in mem://set/: shard 0 copied mem://src/ (full, base none) but shard 3 "
            "copied mem://other/ (full, base none)"
        ),
    ):
        seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert bset.point_ids() == []
    assert len(manifests(set_store)) == 4


def test_shards_of_another_mode_with_a_base_do_not_seal(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, mixed_objects(30))
    bset = new_set()
    base = copy(source, bset, "full", journal, now=Clock(T0)).recovery_point
    for index in range(4):
        mode: Mode = "incremental" if index == 1 else "full"
        copy_shard(source, bset, Shard(index, 4), journal, mode=mode, started=T0 + timedelta(hours=1))
    with pytest.raises(
        InvalidInput, match=re.escape(f"shard 1 copied mem://src/ (incremental, base {base}); run the odd shards")
    ):
        seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=2))
    assert bset.point_ids() == [base]


def test_shards_that_compared_against_different_base_points_do_not_seal(journal: CopyJournal) -> None:
    """A scheduled copy made a point while the shards ran: the later shards compared against it."""
    source = MemoryStore("src")
    put(source, mixed_objects(30))
    bset = new_set()
    first = copy(source, bset, "full", journal, now=Clock(T0)).recovery_point
    for index in (0, 1):
        copy_shard(source, bset, Shard(index, 4), journal, mode="incremental", started=T0 + timedelta(hours=1))
    put(source, {"db/dump-000.sql": b"changed"})
    second = copy(source, bset, "incremental", journal, now=Clock(T0 + timedelta(hours=2))).recovery_point
    for index in (2, 3):
        copy_shard(source, bset, Shard(index, 4), journal, mode="incremental", started=T0 + timedelta(hours=3))
    with pytest.raises(
        InvalidInput, match=rf"base {first}\) but shard 2 copied mem://src/ \(incremental, base {second}"
    ):
        seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=4))
    assert bset.point_ids() == [first, second]


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
@pytest.mark.parametrize("made_now", [True, False], ids=["set-made-by-this-process", "set-opened"])
def test_a_blob_a_shard_wrote_that_is_gone_before_the_seal_is_refused(
    made_now: bool, damage: str, journal: CopyJournal
) -> None:
    source = MemoryStore("src")
    state = mixed_objects(40)
    put(source, state)
    set_store = VanishingStore()
    bset = new_set(set_store)
    copy_shards(source, bset, 4, journal)
    sealer = bset if made_now else open_set(set_store, KeySource(), {})
    assert sealer.made_now is made_now
    part = unseal_shard(read(set_store, shard_manifest_key(DEFAULT_GROUP, 2, 4)), "2-of-4", None)
    victim = next(e for e in part.point.objects if e.size > 1)
    if damage == "deleted":
        set_store.delete(blob_key(victim.blob))
    else:
        stored = read(set_store, blob_key(victim.blob))
        set_store.write(blob_key(victim.blob), io.BytesIO(stored[:-1]))
    expected = rf"{re.escape(victim.key)}'s data, written by shard 2/4 .* no recovery point was written"
    with pytest.raises(IntegrityError, match=expected):
        seal_shards(sealer, 4, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert bset.point_ids() == []
    assert len(manifests(set_store)) == 4, "every shard manifest is kept: only the one shard must run again"

    # The fix the message names: that shard again, then the seal.
    copy_shard(source, bset, Shard(2, 4), journal, started=T0 + timedelta(hours=2))
    point = seal_shards(sealer, 4, DEFAULT_GROUP, T0 + timedelta(hours=3)).point
    assert restored(bset, point.id) == state


# -- a seal that crashed is sealed once ------------------------------------------------------------------------------


def test_a_seal_repeated_after_a_crash_before_the_clean_up_writes_no_second_point(
    four_shards: tuple[MemoryStore, MemoryStore, BackupSet],
) -> None:
    source, set_store, bset = four_shards
    kept = manifests(set_store)
    first = seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert manifests(set_store) == {}
    for key, raw in kept.items():  # the seal died after writing the point, before removing these
        set_store.write(key, io.BytesIO(raw))

    again = seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=2))
    assert again.already_sealed is True
    assert again.point == first.point
    assert again.summary()["already_sealed"] is True
    assert bset.point_ids() == [first.point.id]
    assert manifests(set_store) == {}
    assert restored(bset) == contents(source)


def test_manifests_a_seal_could_not_remove_are_reported_and_removed_by_the_next_seal(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, mixed_objects(30))
    set_store = StickyManifestStore()
    bset = new_set(set_store)
    copy_shards(source, bset, 3, journal)
    set_store.refuse = True
    first = seal_shards(bset, 3, DEFAULT_GROUP, T0 + timedelta(hours=1))
    assert first.already_sealed is False
    assert first.leftovers == tuple(manifest_url(i, 3) for i in range(3))
    assert first.summary()["shard_manifests_left"] == [manifest_url(i, 3) for i in range(3)]
    assert bset.point_ids() == [first.point.id], "the point is written whatever happens to the clean-up"

    set_store.refuse = False
    again = seal_shards(bset, 3, DEFAULT_GROUP, T0 + timedelta(hours=2))
    assert (again.already_sealed, again.point.id, again.leftovers) == (True, first.point.id, ())
    assert bset.point_ids() == [first.point.id]
    assert manifests(set_store) == {}


def test_a_later_round_in_the_same_group_is_a_new_point(
    four_shards: tuple[MemoryStore, MemoryStore, BackupSet], journal: CopyJournal
) -> None:
    source, _, bset = four_shards
    first = seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=1)).point
    copy_shards(source, bset, 4, journal, started=T0 + timedelta(hours=2))  # nothing changed at the source
    second = seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(hours=3))
    assert second.already_sealed is False
    assert bset.point_ids() == [first.id, second.point.id]
    assert second.point.started == T0 + timedelta(hours=2)


# -- resume, per shard ------------------------------------------------------------------------------------------------


def test_a_failed_shard_leaves_no_manifest_and_its_rerun_resumes_its_own_run(journal: CopyJournal) -> None:
    source = ReadCountingStore()
    state = {f"k{i:02d}": bytes([i]) * 100 for i in range(40)}
    put(source, state)
    set_store = MemoryStore("set")
    bset = new_set(set_store)
    slices = [slice_of(list(state), Shard(i, 2)) for i in range(2)]
    assert min(len(s) for s in slices) >= 5

    # Both shards break mid-way on this machine, sharing its journal: shard 0 after 3 objects, shard 1 after 2.
    source.fail_on = slices[0][3]
    with pytest.raises(Transient, match="connection reset"):
        copy_shard(source, bset, Shard(0, 2), journal, transfers=1, started=T0)
    source.fail_on = slices[1][2]
    with pytest.raises(Transient, match="connection reset"):
        copy_shard(source, bset, Shard(1, 2), journal, transfers=1, started=T0 + timedelta(minutes=1))
    source.fail_on = None
    assert manifests(set_store) == {}
    assert bset.point_ids() == []
    assert len(bset.blob_sizes()) == 5
    with pytest.raises(NotFound, match=re.escape("no shard of group 'default' has finished")):
        seal_shards(bset, 2, DEFAULT_GROUP, T0 + timedelta(minutes=5))

    # Reruns, in the other order: each finds its own journalled objects, not the other shard's.
    second = copy_shard(source, bset, Shard(1, 2), journal, started=T0 + timedelta(minutes=10))
    assert (second.resumed_objects, second.objects_transferred) == (2, len(slices[1]) - 2)
    with pytest.raises(NotFound, match=re.escape("shard 0 of 2 (group 'default') has not finished")):
        seal_shards(bset, 2, DEFAULT_GROUP, T0 + timedelta(minutes=15))
    first = copy_shard(source, bset, Shard(0, 2), journal, started=T0 + timedelta(minutes=20))
    assert (first.resumed_objects, first.objects_transferred) == (3, len(slices[0]) - 3)
    assert first.paths["resumed"] == 3
    assert {k for k, v in first.object_paths.items() if v == "resumed"} == set(slices[0][:3])
    # A resumed run keeps its id (a shard's part is named by it), dated by its first attempt.
    assert first.recovery_point.startswith(f"{T0 + timedelta(seconds=30):%Y%m%dT%H%M%S%fZ}-")
    assert second.recovery_point.startswith(f"{T0 + timedelta(minutes=1, seconds=30):%Y%m%dT%H%M%S%fZ}-")
    assert source.reads == Counter(dict.fromkeys(state, 1)), "no journalled object is read again"

    point = seal_shards(bset, 2, DEFAULT_GROUP, T0 + timedelta(minutes=30)).point
    assert {e.written_by for e in point.objects} == {point.id}
    assert point.totals.objects_transferred == len(state)
    assert restored(bset, point.id) == state
    # Once finished, a shard's run is never resumed again.
    again = copy_shard(source, bset, Shard(0, 2), journal, started=T0 + timedelta(hours=1))
    assert again.resumed_objects == 0
    assert again.recovery_point != first.recovery_point


def test_a_shard_never_resumes_the_unsharded_run_of_the_same_source(journal: CopyJournal) -> None:
    source = ReadCountingStore()
    state = {f"k{i:02d}": bytes([i]) * 10 for i in range(20)}
    put(source, state)
    bset = new_set()
    source.fail_on = "k10"
    with pytest.raises(Transient):
        copy(source, bset, "full", journal, transfers=1)
    source.fail_on = None
    for index in range(2):
        result = copy_shard(source, bset, Shard(index, 2), journal)
        assert result.resumed_objects == 0
    # The unsharded copy still resumes its own run.
    resumed = copy(source, bset, "full", journal)
    assert resumed.resumed_objects == 10


# -- progress in the set, for a rerun on another machine -------------------------------------------------------------


def ticking() -> Callable[[], float]:
    """A monotonic clock that moves on past any checkpoint interval at every reading: a checkpoint is due after
    every object."""
    ticks = itertools.count(0, CHECKPOINT_S + 1)
    return lambda: float(next(ticks))


@pytest.fixture
def interrupted_shard(
    journal: CopyJournal,
) -> tuple[ReadCountingStore, MemoryStore, BackupSet, list[str]]:
    """Shard 0 of 2, checkpointing after every object, broke on the fourth object of its slice."""
    source = ReadCountingStore()
    put(source, {f"k{i:02d}": bytes([i]) * 100 for i in range(40)})
    set_store = MemoryStore("set", now=AtT0)
    bset = new_set(set_store)
    keys = slice_of([o.key for o in source.list()], Shard(0, 2))
    source.fail_on = keys[3]
    with pytest.raises(Transient):
        copy_shard(source, bset, Shard(0, 2), journal, transfers=1, clock=ticking())
    source.fail_on = None
    return source, set_store, bset, keys


def test_a_shard_rerun_on_another_machine_resumes_from_its_progress_in_the_set(
    interrupted_shard: tuple[ReadCountingStore, MemoryStore, BackupSet, list[str]], tmp_path: Path
) -> None:
    source, set_store, bset, keys = interrupted_shard
    assert sorted(manifests(set_store)) == [progress_key(Shard(0, 2))], "progress, and no shard manifest"
    with pytest.raises(NotFound, match="no shard of group 'default' has finished"):
        seal_shards(bset, 2, DEFAULT_GROUP, T0 + timedelta(hours=1))

    elsewhere = CopyJournal(tmp_path / "another-pod" / "journal.sqlite")  # a new pod: none of the first journal
    try:
        rerun = copy_shard(source, bset, Shard(0, 2), elsewhere, started=T0 + timedelta(minutes=5))
        other = copy_shard(source, bset, Shard(1, 2), elsewhere, started=T0 + timedelta(minutes=6))
    finally:
        elsewhere.close()
    assert (rerun.resumed_objects, rerun.objects_transferred) == (3, len(keys) - 3)
    assert other.resumed_objects == 0, "shard 1 takes nothing from shard 0's progress"
    assert all(source.reads[k] == 1 for k in keys), "what the first run checkpointed is not read again"
    assert sorted(manifests(set_store)) == [shard_manifest_key(DEFAULT_GROUP, i, 2) for i in range(2)]
    point = seal_shards(bset, 2, DEFAULT_GROUP, T0 + timedelta(hours=1)).point
    assert restored(bset, point.id) == contents(source)
    assert {e.written_by for e in point.objects} == {point.id}


def test_a_damaged_progress_file_only_costs_a_fresh_start(
    interrupted_shard: tuple[ReadCountingStore, MemoryStore, BackupSet, list[str]], tmp_path: Path
) -> None:
    source, set_store, bset, keys = interrupted_shard
    key = progress_key(Shard(0, 2))
    set_store.write(key, io.BytesIO(flip_hex(read(set_store, key), _first_sha(read(set_store, key)))))
    # Prune is not stopped by it: what it names is only unreferenced data older than the grace period now.
    report = prune_set(bset, RetentionPolicy(keep_last=1), T0 + timedelta(days=30), timedelta(hours=1))
    assert report.blobs_deleted == 3
    elsewhere = CopyJournal(tmp_path / "another-pod" / "journal.sqlite")
    try:
        rerun = copy_shard(source, bset, Shard(0, 2), elsewhere)
    finally:
        elsewhere.close()
    assert (rerun.resumed_objects, rerun.objects_transferred) == (0, len(keys))
    assert sorted(manifests(set_store)) == [shard_manifest_key(DEFAULT_GROUP, 0, 2)], "the progress file is gone"


def test_prune_keeps_what_an_interrupted_shard_checkpointed(
    interrupted_shard: tuple[ReadCountingStore, MemoryStore, BackupSet, list[str]], tmp_path: Path
) -> None:
    source, _, bset, _ = interrupted_shard
    written = set(bset.blob_sizes())
    assert len(written) == 3
    report = prune_set(bset, RetentionPolicy(keep_last=1), T0 + timedelta(days=30), timedelta(hours=1))
    assert (report.blobs_deleted, report.blobs_in_grace) == (0, 0)
    assert set(bset.blob_sizes()) == written
    elsewhere = CopyJournal(tmp_path / "another-pod" / "journal.sqlite")
    try:
        assert copy_shard(source, bset, Shard(0, 2), elsewhere).resumed_objects == 3
    finally:
        elsewhere.close()


# -- incremental shards ----------------------------------------------------------------------------------------------


def test_an_incremental_sharded_copy_transfers_only_what_changed(journal: CopyJournal) -> None:
    source = ReadCountingStore()
    before = mixed_objects(30)
    put(source, before)
    bset = new_set()
    copy_shards(source, bset, 4, journal, started=T0)
    base = seal_shards(bset, 4, DEFAULT_GROUP, T0 + timedelta(minutes=10)).point

    keys = sorted(before)
    changed = {keys[0]: b"changed", keys[7]: b"", keys[12]: b"x" * 5000}
    added = {"new/one": b"fresh", "new/two": b""}
    put(source, {**changed, **added})
    source.delete(keys[20])
    source.reads.clear()
    results = copy_shards(source, bset, 3, journal, mode="incremental", started=T0 + timedelta(hours=1))
    point = seal_shards(bset, 3, DEFAULT_GROUP, T0 + timedelta(hours=2)).point

    sent = {**changed, **added}
    assert (point.mode, point.parent) == ("incremental", base.id)
    assert sum(r.objects_transferred for r in results) == len(sent)
    assert set(source.reads) == set(sent), "unchanged objects are not read"
    base_entries = {e.key: e for e in base.objects}
    for entry in point.objects:
        if entry.key in sent:
            assert entry.written_by == point.id, entry.key
        else:
            assert entry == base_entries[entry.key], f"{entry.key} is taken over from the base point as it was"
    assert keys[20] not in {e.key for e in point.objects}
    assert point.totals == Totals(
        objects=len(before) - 1 + len(added),
        bytes=sum(len(v) for v in contents(source).values()),
        objects_transferred=len(sent),
        bytes_transferred=sum(len(v) for v in sent.values()),
        objects_unchanged=len(before) - 1 - len(changed),
    )
    assert point.paths == {"streamed": len(sent), "server-side": 0, "unchanged": len(before) - 1 - len(changed)}
    assert restored(bset, point.id) == contents(source)
    assert restored(bset, base.id) == before
    assert verify_set(bset, deep=True).ok


def test_shards_whose_base_point_was_pruned_meanwhile_do_not_seal(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, mixed_objects(20))
    bset = new_set()
    base = copy(source, bset, "full", journal, now=Clock(T0)).recovery_point
    copy_shards(source, bset, 2, journal, mode="incremental", started=T0 + timedelta(hours=1))
    bset.store.delete(f"points/{base}.json")  # as a prune on a host with a drctl before sharding would
    with pytest.raises(NotFound, match=f"the shards' base point {base} is no longer in mem://set/"):
        seal_shards(bset, 2, DEFAULT_GROUP, T0 + timedelta(hours=2))
    assert bset.point_ids() == []


# -- prune while shards wait for their seal --------------------------------------------------------------------------


def test_prune_keeps_the_data_and_the_base_point_of_shards_not_sealed_yet(journal: CopyJournal) -> None:
    source, other = MemoryStore("src"), MemoryStore("other")
    original = mixed_objects(24)
    put(source, original)
    put(other, {"b/1": b"other source"})
    set_store = MemoryStore("set", now=AtT0)  # every blob dated T0: far older than the grace period below
    bset = new_set(set_store)
    base = copy(source, bset, "full", journal, now=Clock(T0)).recovery_point
    keys = sorted(original)
    put(source, {keys[1]: b"changed one", keys[2]: b"changed two", "added": b"new"})
    copy_shards(source, bset, 3, journal, mode="incremental", started=T0 + timedelta(hours=1))
    latest = copy(other, bset, "full", journal, now=Clock(T0 + timedelta(hours=2))).recovery_point
    waiting = {e.blob for p in pending_parts(bset) for e in p.point.objects if e.written_by == p.point.id}
    assert len(waiting) == 3, "the shards wrote the changed and the added object, named by no point"
    orphan = "f" * 64
    set_store.write(blob_key(orphan), io.BytesIO(b"from a copy that died long ago"))

    report = prune_set(bset, RetentionPolicy(keep_last=1), T0 + timedelta(days=30), timedelta(hours=1))
    assert (report.kept, report.forgotten) == ([base, latest], [])
    assert (report.blobs_deleted, report.blobs_in_grace) == (1, 0), "only the orphan goes"
    assert orphan not in bset.blob_sizes()
    assert waiting <= set(bset.blob_sizes())

    point = seal_shards(bset, 3, DEFAULT_GROUP, T0 + timedelta(days=30, hours=1)).point
    assert point.parent == base
    assert restored(bset, point.id) == contents(source)
    # Sealed, the shards hold nothing back: the base point goes, and the data the new point needs stays.
    report = prune_set(bset, RetentionPolicy(keep_last=1), T0 + timedelta(days=31), timedelta(hours=1))
    assert (report.kept, report.forgotten) == ([point.id], [base, latest])
    assert restored(bset, point.id) == contents(source)
    assert verify_set(bset, deep=True).ok


def test_a_dry_run_prune_reads_encrypted_shard_manifests_with_the_sets_key(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, mixed_objects(12))
    set_store = MemoryStore("set", now=AtT0)
    bset = new_set(set_store, key=KEY)
    copy_shards(source, bset, 2, journal)
    report = prune_set(bset, RetentionPolicy(keep_last=1), T0 + timedelta(days=1), timedelta(hours=1), dry_run=True)
    assert (report.blobs_deleted, report.kept, report.forgotten) == (0, [], [])


# -- empty slices -----------------------------------------------------------------------------------------------------


def test_shards_whose_slice_is_empty_still_finish_and_the_seal_has_the_whole_source(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    state = {"a": b"alpha", "b/c": b""}
    put(source, state)
    set_store = MemoryStore("set")
    bset = new_set(set_store)
    results = copy_shards(source, bset, 8, journal)
    empty = [r.shard.index for r in results if r.shard is not None and r.objects_transferred == 0]
    assert len(empty) >= 6
    for index in empty:
        raw = read(set_store, shard_manifest_key(DEFAULT_GROUP, index, 8))
        part: ShardManifest = unseal_shard(raw, f"{index}-of-8", None)
        assert (part.shard.index, part.shard.count, part.shard.group) == (index, 8, DEFAULT_GROUP)
        assert part.point.objects == ()
        assert part.point.totals.objects == 0
    point = seal_shards(bset, 8, DEFAULT_GROUP, T0 + timedelta(hours=1)).point
    assert [e.key for e in point.objects] == ["a", "b/c"]
    assert restored(bset, point.id) == state


def test_an_empty_source_is_refused_even_to_a_shard(journal: CopyJournal) -> None:
    # The source as a whole is checked, not the shard's slice: an empty source is still a mistake.
    bset = new_set()
    with pytest.raises(InvalidInput, match=r"source mem://empty/ has no objects; nothing to back up"):
        copy_shard(MemoryStore("empty"), bset, Shard(0, 4), journal)
    assert list(bset.store.list(SHARDS_PREFIX)) == []


# -- the runbook action and the command line --------------------------------------------------------------------------


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


TREE = {
    "db/a.dump": b"alpha" * 1000,
    "db/b.dump": random.Random(7).randbytes(70_000),
    "etc/app.conf": b"x = 1\n",
    "empty.txt": b"",
    **{f"logs/{i:03d}.log": f"line {i}\n".encode() * i for i in range(12)},
}


def copy_step(source: Path, vault: Path, **more: object) -> dict[str, object]:
    return {
        "id": "copy",
        "action": "backup.copy",
        "with": {"from": str(source), "to": str(vault), "mode": "full", **more},
    }


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted-compressed"])
def test_backup_copy_with_shards_makes_one_point_through_the_executor(tmp_path: Path, encrypted: bool) -> None:
    source, vault = tmp_path / "src", tmp_path / "vault"
    write_tree(source, TREE)
    env = {"BK": base64.b64encode(KEY).decode()} if encrypted else {}
    sealed: dict[str, object] = {"compress": True, "encrypt": True, "key_env": "BK"} if encrypted else {}
    outcome, journal, _ = run_runbook(tmp_path, [copy_step(source, vault, shards=3, **sealed)], env)
    assert outcome.status == RunStatus.SUCCEEDED, journal.steps(outcome.run_id)
    outputs = journal.steps(outcome.run_id)["copy"].outputs
    assert (outputs["objects_transferred"], outputs["objects_skipped"]) == (len(TREE), 0)
    assert outputs["bytes_transferred"] == sum(len(v) for v in TREE.values())

    bset = open_set(LocalStore(vault), KeySource(key_env="BK" if encrypted else None), env)
    assert bset.point_ids() == [outputs["recovery_point"]]
    point = bset.load_point(str(outputs["recovery_point"]))
    assert (point.totals.objects, point.encryption is not None) == (len(TREE), encrypted)
    assert {e.written_by for e in point.objects} == {point.id}
    assert list(bset.store.list(SHARDS_PREFIX)) == []
    target = LocalStore(tmp_path / "target")
    restore_point(bset, point, target)
    assert read_tree(tmp_path / "target") == TREE


def test_a_shard_that_failed_in_the_step_is_the_only_one_its_retry_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, vault = tmp_path / "src", tmp_path / "vault"
    files = {f"f{i:02d}": bytes([i]) * 50 for i in range(12)}
    write_tree(source, files)
    reads: Counter[str] = Counter()
    broken: list[str] = []
    lock = threading.Lock()
    real_open_read = LocalStore.open_read

    def reset_once(self: LocalStore, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        if self.root == source:
            with lock:
                if key == "f05" and not broken:
                    broken.append(key)
                    raise Transient(f"{self.url}/{key}: connection reset (simulated)")
                reads[key] += 1
        return real_open_read(self, key, start, length)

    monkeypatch.setattr(LocalStore, "open_read", reset_once)
    step = {**copy_step(source, vault, shards=3, transfers=1), "retry": {"attempts": 2}}
    outcome, journal, _ = run_runbook(tmp_path, [step])
    assert outcome.status == RunStatus.SUCCEEDED, journal.steps(outcome.run_id)
    record = journal.steps(outcome.run_id)["copy"]
    assert (record.attempts, broken) == (2, ["f05"])
    assert reads == Counter(dict.fromkeys(files, 1)), "the retry ran the broken shard alone, and it resumed"
    bset = open_set(LocalStore(vault), KeySource(), {})
    assert bset.point_ids() == [record.outputs["recovery_point"]]
    assert restored(bset) == files


def test_a_resumed_run_can_repair_a_seal_refused_for_a_shards_lost_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seal refuses a shard whose blob is gone ("run its shard again"); a resume of the run is the only way a
    runbook has to run it again, so a resume must not skip that shard because its manifest is there."""
    source, vault = tmp_path / "src", tmp_path / "vault"
    files = {f"f{i:02d}": bytes([i]) * 50 for i in range(12)}
    write_tree(source, files)
    real_seal = seal_shards
    seals: list[str] = []

    def seal_after_a_loss(bset: BackupSet, count: int, group: str, now: datetime) -> SealResult:
        seals.append(group)
        if len(seals) == 1:  # between the shards and the seal, one blob is lost (a prune elsewhere, a bad disk)
            min(p for p in (vault / "data").rglob("*") if p.is_file()).unlink()
        return real_seal(bset, count, group, now)

    monkeypatch.setattr(backup_copy, "seal_shards", seal_after_a_loss)
    path = tmp_path / "rb.yaml"
    steps = [copy_step(source, vault, shards=3)]
    doc = {"apiVersion": "drctl/v1", "kind": "Runbook", "metadata": {"name": "t"}, "spec": {"steps": steps}}
    path.write_text(json.dumps(doc))
    journal = RunJournal(tmp_path / "state" / "runs.sqlite")
    executor = Executor(journal, env={"DRCTL_STATE_DIR": str(tmp_path / "state")})
    first = executor.run(load_runbook(path), path, RunOptions())
    assert first.status == RunStatus.FAILED
    error = str(journal.steps(first.run_id)["copy"].error)
    assert re.search(r"written by shard [0-2]/3 of group .*no recovery point was written\. Run that shard again", error)
    assert "resume the run to copy them again" in error

    resumed = executor.resume(first.run_id)
    assert resumed.status == RunStatus.SUCCEEDED, journal.steps(first.run_id)["copy"].error
    bset = open_set(LocalStore(vault), KeySource(), {})
    assert restored(bset) == files
    journal.close()


@pytest.mark.parametrize(("shards", "message"), [(0, "must be at least 1, got 0"), (65, "must be at most 64, got 65")])
def test_backup_copy_refuses_a_shard_count_out_of_range(tmp_path: Path, shards: int, message: str) -> None:
    doc = {
        "apiVersion": "drctl/v1",
        "kind": "Runbook",
        "metadata": {"name": "t"},
        "spec": {
            "steps": [
                {
                    "id": "copy",
                    "action": "backup.copy",
                    "with": {"from": str(tmp_path / "src"), "to": str(tmp_path / "vault"), "shards": shards},
                }
            ]
        },
    }
    path = tmp_path / "rb.yaml"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match=rf"with\.shards {message}"):
        load_runbook(path)


def test_the_command_line_runs_shards_and_seals_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRCTL_BACKUP_KEY", raising=False)
    source, vault = tmp_path / "src", tmp_path / "vault"
    write_tree(source, TREE)
    src, dst = str(source), str(vault)

    def drctl(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    code, _, err = drctl("backup", "copy", src, dst, "--mode", "full", "--shard", "0/2", "--quiet")
    assert code == ExitCode.INVALID_INPUT, err
    assert "is not a backup set yet, and shards cannot make one: run `drctl backup init" in err
    assert not vault.exists(), "a shard makes no set"
    code, out, _ = drctl("backup", "init", dst)
    assert code == ExitCode.OK
    assert "is a new backup set (plain)" in out
    code, out, _ = drctl("backup", "init", dst)
    assert (code, "is already a backup set" in out) == (ExitCode.OK, True)

    for bad, words in [
        (["--shard", "2/2"], "must be below 2"),
        (["--shard", "0/2", "--shard-group", "../up"], "is not a valid name"),
        (["--shard-group", "nightly"], "for sharded copies; give --shard I/N too"),
    ]:
        code, _, err = drctl("backup", "copy", src, dst, "--mode", "full", "--quiet", *bad)
        assert code == ExitCode.INVALID_INPUT, err
        assert words in err
        assert err.count("\n") == 1

    copy_args = ["backup", "copy", src, dst, "--mode", "full", "--quiet", "--json", "--shard-group", "nightly-7"]
    # A refused command keeps the set's lock until its process ends (the next process takes it over), so the
    # refused seals run as processes of their own, as a user's do.
    env = {**process_env({}), "DRCTL_STATE_DIR": str(tmp_path / "state")}

    def refused_seal(code: ExitCode, words: str, *args: str) -> None:
        assert_one_line_error(run_drctl("backup", "seal", dst, *args, env=env), code, words)

    code, out, err = drctl(*copy_args, "--shard", "0/2")
    assert code == ExitCode.OK, err
    summary = json.loads(out)
    assert (summary["recovery_point"], summary["shard"], summary["shard_group"]) == (None, "0/2", "nightly-7")
    missing = "shard 1 of 2 (group 'nightly-7') has not finished"
    refused_seal(ExitCode.NOT_FOUND, missing, "--shards", "2", "--shard-group", "nightly-7")
    code, out, err = drctl(*copy_args, "--shard", " 1 / 2 ")
    assert code == ExitCode.OK, err
    other_count = "holds shards of a 2-way copy, not 3-way"
    refused_seal(ExitCode.INVALID_INPUT, other_count, "--shards", "3", "--shard-group", "nightly-7")
    refused_seal(ExitCode.NOT_FOUND, "no shard of group 'default' has finished", "--shards", "2")

    code, out, err = drctl("backup", "seal", dst, "--shards", "2", "--shard-group", "nightly-7", "--json")
    assert code == ExitCode.OK, err
    sealed = json.loads(out)
    assert (sealed["shards"], sealed["already_sealed"], sealed["objects"]) == (2, False, len(TREE))
    assert sealed["shard_manifests_left"] == []
    bset = open_set(LocalStore(vault), KeySource(), {})
    assert bset.point_ids() == [sealed["recovery_point"]]
    assert restored(bset) == TREE
    assert not any(p.is_file() for p in (vault / "shards").rglob("*"))


def test_verify_counts_unsealed_shards_data_as_awaited_not_extra(journal: CopyJournal) -> None:
    source = MemoryStore("src")
    put(source, mixed_objects(12))
    bset = new_set()
    copy_shards(source, bset, 3, journal)
    orphan = "ab" * 32
    bset.store.write(blob_key(orphan), io.BytesIO(b"left by nothing"))
    # Only the blob no shard names is extra; the shards' blobs wait for their seal.
    assert verify_set(bset, None).extra == [orphan]


def test_a_shard_into_an_empty_location_is_told_to_init_whatever_its_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_bytes(b"a")
    code = cli.main(["backup", "copy", str(tmp_path / "src"), str(tmp_path / "vault"), "--shard", "0/2"])
    assert code == ExitCode.INVALID_INPUT
    assert "drctl backup init" in capsys.readouterr().err
