"""Backups that come back: copy between the clouds of the lab, restore, and compare every byte.

Each copy's ``--json`` summary must count exactly what changed, and each restore must give exactly the source as
it was when its point was taken: no object missing, none extra, none different.

Restores go into a fresh prefix of the other cloud, and into a local directory with many objects written in
parallel into the same folders (the interleaving that once broke that is replayed deterministically in
``test_backup_engine.test_parallel_writes_into_a_local_directory_never_collide``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from orchestrator.backup.layout import DATA_PREFIX, POINTS_PREFIX
from orchestrator.errors import ExitCode
from orchestrator.providers.base import ObjectStore
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import (
    backup_env,
    cli_copy,
    cli_points,
    cli_restore,
    copy_in_process,
    listing,
    new_key,
    open_backup_set,
    read_object,
    read_store,
    read_tree,
    run_json,
    seed,
)
from tests.support.cli import assert_one_line_error, drctl


@dataclass(frozen=True)
class Pair:
    """A source location and a backup-set location in the lab, with stores to seed and inspect them."""

    factory: StoreFactory
    source_url: str
    set_url: str
    source: ObjectStore
    set_store: ObjectStore

    def target(self, name: str) -> tuple[str, ObjectStore]:
        """A fresh restore target beside the source (so in the other cloud than the set)."""
        url = self.source_url.replace("/src/", f"/restored/{name}/")
        return url, self.factory.open(url)


def make_pair(factory: StoreFactory, direction: str, s3_bucket: str, az_container: str) -> Pair:
    if direction == "s3-to-azure":
        source_url, set_url = f"s3://{s3_bucket}/src/", f"az://{az_container}/set/"
    else:
        source_url, set_url = f"az://{az_container}/src/", f"s3://{s3_bucket}/set/"
    return Pair(factory, source_url, set_url, factory.open(source_url), factory.open(set_url))


@pytest.fixture
def s3_to_azure(lab_factory: StoreFactory, s3_bucket: str, az_container: str) -> Pair:
    return make_pair(lab_factory, "s3-to-azure", s3_bucket, az_container)


def apply(
    store: ObjectStore, before: Mapping[str, bytes], after: Mapping[str, bytes], rewrite: tuple[str, ...] = ()
) -> None:
    """Make the source go from ``before`` to ``after``: write what is new or different (and the ``rewrite`` keys,
    with their unchanged bytes), delete what is gone."""
    seed(store, {k: v for k, v in after.items() if before.get(k) != v or k in rewrite})
    for key in before.keys() - after.keys():
        store.delete(key)


def counts(summary: Mapping[str, object]) -> tuple[object, object, object]:
    return summary["objects_transferred"], summary["objects_skipped"], summary["bytes_transferred"]


def size_of(state: Mapping[str, bytes], keys: list[str]) -> int:
    return sum(len(state[k]) for k in keys)


def restore_and_compare(
    pair: Pair, name: str, env: Mapping[str, str], expected: Mapping[str, bytes], *extra: str
) -> str:
    """Restore (the latest point, unless ``extra`` says otherwise) into a fresh target and require it to hold
    ``expected`` exactly; returns the point restored."""
    url, store = pair.target(name)
    summary = cli_restore(pair.set_url, url, env, *extra)
    assert read_store(store) == dict(expected)
    assert summary["objects_restored"] == len(expected)
    assert summary["bytes_restored"] == sum(len(v) for v in expected.values())
    return str(summary["recovery_point"])


@pytest.mark.parametrize("direction", ["s3-to-azure", "azure-to-s3"])
def test_full_incremental_differential_round_trip(
    direction: str,
    lab_env: dict[str, str],
    lab_factory: StoreFactory,
    s3_bucket: str,
    az_container: str,
    tmp_path: Path,
) -> None:
    pair = make_pair(lab_factory, direction, s3_bucket, az_container)
    env = backup_env(lab_env, tmp_path / "state")

    state0 = {
        "db/base.bin": os.urandom(300_000),
        "db/changes.log": os.urandom(5_000),
        "docs/read me.txt": b"quarterly numbers\n" * 40,
        "ünïcödé/日本.dat": os.urandom(2_000),
        "empty.dat": b"",
        "deep/a/b/c/leaf.bin": os.urandom(70_000),
    }
    seed(pair.source, state0)
    full = cli_copy(pair.source_url, pair.set_url, "full", env)
    assert counts(full) == (6, 0, size_of(state0, list(state0)))
    assert full["objects_resumed"] == 0
    assert restore_and_compare(pair, "full", env, state0) == full["recovery_point"]

    # Change one object, add one, delete one, and rewrite one with the very same bytes (not a change).
    state1 = dict(state0)
    state1["db/changes.log"] = state0["db/changes.log"] + os.urandom(1_000)
    state1["db/new.bin"] = os.urandom(40_000)
    del state1["docs/read me.txt"]
    apply(pair.source, state0, state1, rewrite=("deep/a/b/c/leaf.bin",))
    incremental = cli_copy(pair.source_url, pair.set_url, "incremental", env)
    changed1 = ["db/changes.log", "db/new.bin"]
    assert counts(incremental) == (2, len(state1) - 2, size_of(state1, changed1))
    assert restore_and_compare(pair, "incr", env, state1) == incremental["recovery_point"]

    # Change one object in place (same size, new bytes) and add one: the differential sends everything
    # changed since the full, including what the incremental already sent.
    state2 = dict(state1)
    state2["db/base.bin"] = os.urandom(300_000)
    state2["new/second.bin"] = os.urandom(10_000)
    apply(pair.source, state1, state2)
    differential = cli_copy(pair.source_url, pair.set_url, "differential", env)
    changed2 = [*changed1, "db/base.bin", "new/second.bin"]
    assert counts(differential) == (4, len(state2) - 4, size_of(state2, changed2))
    assert restore_and_compare(pair, "diff", env, state2) == differential["recovery_point"]

    points = cli_points(pair.set_url, env)
    assert [(p["id"], p["mode"], p["parent"], p["objects"]) for p in points] == [
        (full["recovery_point"], "full", None, len(state0)),
        (incremental["recovery_point"], "incremental", full["recovery_point"], len(state1)),
        (differential["recovery_point"], "differential", full["recovery_point"], len(state2)),
    ]


def test_a_restore_into_a_local_directory_writes_many_objects_in_parallel_into_the_same_folders(
    s3_to_azure: Pair, lab_env: dict[str, str], lab_factory: StoreFactory, tmp_path: Path
) -> None:
    pair = s3_to_azure
    state_dir = tmp_path / "state"
    env = backup_env(lab_env, state_dir)
    state = {f"{folder}/{i:03d}.bin": os.urandom(1_000 + i) for folder in ("a", "a/b", "c") for i in range(40)}
    state["ünïcödé/日本.dat"] = os.urandom(2_000)
    seed(pair.source, state)
    point = copy_in_process(lab_factory, pair.source_url, pair.set_url, "full", state_dir)
    target = tmp_path / "restored"
    summary = cli_restore(pair.set_url, target, env)
    assert summary["recovery_point"] == point.recovery_point
    # Exactly the point: no object missing or different, and no temporary file left beside them.
    assert read_tree(target) == state


def test_restore_at_a_time_between_points_gives_the_earlier_state(
    s3_to_azure: Pair, lab_env: dict[str, str], lab_factory: StoreFactory, tmp_path: Path
) -> None:
    pair = s3_to_azure
    state_dir = tmp_path / "state"
    env = backup_env(lab_env, state_dir)
    before = {"a.bin": os.urandom(20_000), "b.bin": os.urandom(30_000), "c.bin": os.urandom(1_000)}
    seed(pair.source, before)
    first = copy_in_process(lab_factory, pair.source_url, pair.set_url, "full", state_dir)
    after = {"a.bin": os.urandom(20_000), "b.bin": before["b.bin"], "d.bin": os.urandom(5_000)}
    apply(pair.source, before, after)
    second = copy_in_process(lab_factory, pair.source_url, pair.set_url, "incremental", state_dir)

    points = cli_points(pair.set_url, env)
    assert [p["id"] for p in points] == [first.recovery_point, second.recovery_point]
    t1, t2 = (datetime.fromisoformat(p["created"]) for p in points)
    assert t1 < t2

    between = t1 + (t2 - t1) / 2
    restored = restore_and_compare(pair, "between", env, before, "--at", between.isoformat())
    assert restored == first.recovery_point
    restored = restore_and_compare(pair, "exactly-second", env, after, "--at", t2.isoformat())
    assert restored == second.recovery_point

    too_early = drctl(
        "backup", "restore", pair.set_url, str(tmp_path / "too-early"), "--at", (t1 - (t2 - t1)).isoformat(), env=env
    )
    assert_one_line_error(too_early, ExitCode.NOT_FOUND, "no recovery point at or before", first.recovery_point)
    assert not (tmp_path / "too-early").exists()


def test_encrypted_compressed_set_round_trips_and_hides_the_plaintext(
    s3_to_azure: Pair, lab_env: dict[str, str], lab_factory: StoreFactory, tmp_path: Path
) -> None:
    pair = s3_to_azure
    key = new_key()
    env = backup_env(lab_env, tmp_path / "state", SET_KEY=key)
    marker = b"PLAINTEXT-MARKER-4f1c"
    state0 = {
        "text/compressible.txt": marker + b" the same line again and again\n" * 20_000,
        "bin/random.bin": os.urandom(1_500_000),  # more than one encryption segment
        "empty.dat": b"",
    }
    seed(pair.source, state0)
    crypt = ("--encrypt", "--compress", "--key-env", "SET_KEY")
    full = cli_copy(pair.source_url, pair.set_url, "full", env, *crypt)
    assert counts(full) == (3, 0, size_of(state0, list(state0)))

    blobs = list(pair.set_store.list(DATA_PREFIX))
    assert len(blobs) == 3
    plaintexts = set(state0.values())
    for info in blobs:
        stored = read_object(pair.set_store, info.key)
        assert stored not in plaintexts
        assert marker not in stored
        assert stored[:4] != b"\x28\xb5\x2f\xfd"  # not a bare zstd frame: compressed, then encrypted
    # Compression happened before encryption: the repetitive text shrank far below its plaintext size.
    assert min(b.size for b in blobs) < len(state0["text/compressible.txt"]) // 10
    for point in pair.set_store.list(POINTS_PREFIX):
        assert marker not in read_object(pair.set_store, point.key)

    state1 = dict(state0)
    state1["text/compressible.txt"] = marker + b" now with a different line\n" * 10_000
    state1["bin/new.bin"] = os.urandom(3_000)
    apply(pair.source, state0, state1)
    incremental = cli_copy(pair.source_url, pair.set_url, "incremental", env, "--key-env", "SET_KEY")
    assert counts(incremental) == (2, len(state1) - 2, size_of(state1, ["text/compressible.txt", "bin/new.bin"]))

    latest = restore_and_compare(pair, "latest", env, state1, "--key-env", "SET_KEY")
    assert latest == incremental["recovery_point"]
    first = restore_and_compare(pair, "first", env, state0, "--key-env", "SET_KEY", "--point", full["recovery_point"])
    assert first == full["recovery_point"]
    verify = run_json("backup", "verify", pair.set_url, "--deep", "--json", "--key-env", "SET_KEY", env=env)
    assert verify["ok"] is True
    assert verify["corrupt"] == verify["missing"] == []


def test_prune_keeps_every_object_the_kept_points_need(
    s3_to_azure: Pair, lab_env: dict[str, str], lab_factory: StoreFactory, tmp_path: Path
) -> None:
    pair = s3_to_azure
    state_dir = tmp_path / "state"
    env = backup_env(lab_env, state_dir)
    states: list[dict[str, bytes]] = [
        {"a": os.urandom(4_000), "b": os.urandom(5_000), "c": os.urandom(6_000), "d": os.urandom(7_000)}
    ]
    # P1 full; P2 changes a, adds e, deletes d; P3 changes b, adds f; P4 changes a again, deletes c.
    # c (written by P1), a and e (written by P2) are still needed by the kept points P3 and P4.
    edits: list[tuple[dict[str, bytes], set[str]]] = [
        ({"a": os.urandom(4_100), "e": os.urandom(1_000)}, {"d"}),
        ({"b": os.urandom(5_100), "f": os.urandom(2_000)}, set()),
        ({"a": os.urandom(4_200)}, {"c"}),
    ]
    seed(pair.source, states[0])
    ids = [copy_in_process(lab_factory, pair.source_url, pair.set_url, "full", state_dir).recovery_point]
    for changes, deletions in edits:
        nxt = {k: v for k, v in {**states[-1], **changes}.items() if k not in deletions}
        apply(pair.source, states[-1], nxt)
        states.append(nxt)
        ids.append(copy_in_process(lab_factory, pair.source_url, pair.set_url, "incremental", state_dir).recovery_point)

    bset = open_backup_set(lab_factory, pair.set_url)
    points = {p.id: p for p in bset.points()}
    kept_blobs = {e.blob for pid in ids[2:] for e in points[pid].objects}
    forgotten_only = {e.blob for pid in ids[:2] for e in points[pid].objects} - kept_blobs
    assert len(forgotten_only) == 3  # a and b as P1 wrote them, and d
    assert set(bset.blob_sizes()) == kept_blobs | forgotten_only

    report = run_json("backup", "prune", pair.set_url, "--keep-last", "2", "--grace", "0", "--json", env=env)
    assert report["kept"] == ids[2:]
    assert report["forgotten"] == ids[:2]
    assert report["blobs_deleted"] == 3
    assert report["blobs_in_grace"] == 0
    assert set(bset.blob_sizes()) == kept_blobs
    assert [p["id"] for p in cli_points(pair.set_url, env)] == ids[2:]

    verify = run_json("backup", "verify", pair.set_url, "--deep", "--json", env=env)
    assert (verify["ok"], verify["missing"], verify["corrupt"], verify["extra"]) == (True, [], [], [])
    assert verify["points"] == ids[2:]
    for pid, state in zip(ids[2:], states[2:], strict=True):
        assert restore_and_compare(pair, pid, env, state, "--point", pid) == pid


def test_prune_dry_run_deletes_nothing(
    s3_to_azure: Pair, lab_env: dict[str, str], lab_factory: StoreFactory, tmp_path: Path
) -> None:
    pair = s3_to_azure
    state_dir = tmp_path / "state"
    env = backup_env(lab_env, state_dir)
    seed(pair.source, {"x": os.urandom(1_000)})
    copy_in_process(lab_factory, pair.source_url, pair.set_url, "full", state_dir)
    seed(pair.source, {"x": os.urandom(1_000)})
    copy_in_process(lab_factory, pair.source_url, pair.set_url, "incremental", state_dir)
    before = listing(pair.set_store)

    report = run_json(
        "backup", "prune", pair.set_url, "--keep-last", "1", "--grace", "0", "--dry-run", "--json", env=env
    )
    assert (report["dry_run"], len(report["forgotten"]), report["blobs_deleted"]) == (True, 1, 1)
    assert listing(pair.set_store) == before


def test_keygen_makes_a_private_key_file_that_opens_its_set(tmp_path: Path) -> None:
    """Directory to directory, no lab."""
    env = backup_env({}, tmp_path / "state")
    key_file = tmp_path / "drctl.key"
    result = drctl("backup", "keygen", str(key_file), env=env)
    assert result.returncode == 0, result.stderr
    assert "wrote a new 256-bit key" in result.stdout
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_text = key_file.read_text()
    assert len(base64.b64decode(key_text.strip(), validate=True)) == 32

    again = drctl("backup", "keygen", str(key_file), env=env)
    assert_one_line_error(again, ExitCode.INVALID_INPUT, "already exists", "never overwritten")
    assert key_file.read_text() == key_text

    source, set_dir, target = tmp_path / "source", tmp_path / "set", tmp_path / "target"
    (source / "db").mkdir(parents=True)
    data = os.urandom(100_000)
    (source / "db" / "dump.bin").write_bytes(data)
    summary = cli_copy(str(source), str(set_dir), "full", env, "--encrypt", "--key-file", str(key_file))
    assert counts(summary) == (1, 0, len(data))
    restored = cli_restore(str(set_dir), target, env, "--key-file", str(key_file))
    assert restored["recovery_point"] == summary["recovery_point"]
    assert read_tree(target) == {"db/dump.bin": data}
    for path in set_dir.rglob("*"):
        if path.is_file():
            assert data[:64] not in path.read_bytes()
            assert key_text.strip().encode() not in path.read_bytes()
