"""Server-side copies on the lab (issue #18): within S3 (LocalStack) and within one Azure account (Azurite),
backup and restore have the service copy the bytes, prove each copy (S3's checksum of the copy, or one
read-back on Azure, which reports none) and say so in their summaries. A set that compresses streams, and a
blob damaged in the set is refused by a server-side restore, which leaves nothing of it in the target. From S3
into Azure, Azurite cannot read a presigned URL, so the copy streams and says why."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from orchestrator.backup.crypto import KeySource
from orchestrator.backup.layout import blob_key
from orchestrator.backup.sets import open_set
from orchestrator.errors import ExitCode
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import backup_env, read_store, run_json, seed
from tests.support.cli import assert_one_line_error, drctl

OBJECTS = {f"app/{i:02d}.bin": os.urandom(1000 + i * 3001) for i in range(24)} | {"empty.txt": b""}


@pytest.fixture
def env(lab_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return backup_env(lab_env, tmp_path / "state")


def _copy_and_restore(
    env: dict[str, str], source: str, set_url: str, target: str, *extra: str
) -> tuple[dict[str, object], dict[str, object]]:
    copied = run_json("backup", "copy", source, set_url, "--mode", "full", "--json", "--quiet", *extra, env=env)
    restored = run_json("backup", "restore", set_url, target, "--json", "--quiet", env=env)
    return copied, restored


def test_within_s3_backup_and_restore_are_server_side_and_proven_by_s3s_checksum(
    env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str
) -> None:
    source, set_url, target = (f"s3://{s3_bucket}/{p}/" for p in ("src", "set", "restored"))
    seed(lab_factory.open(source), OBJECTS)
    copied, restored = _copy_and_restore(env, source, set_url, target)
    n = len(OBJECTS)
    assert copied["paths"] == {"streamed": 0, "server-side": n, "unchanged": 0, "resumed": 0}
    assert copied["server_side_verified_by"] == {"service checksum": n}
    assert restored["paths"] == {"server-side (service checksum)": n}
    assert read_store(lab_factory.open(target)) == OBJECTS
    # The point records SHA-256s the service computed; a deep verify re-reads every byte against them.
    assert run_json("backup", "verify", set_url, "--deep", "--json", env=env)["ok"] is True


def test_within_one_azure_account_copies_are_server_side_and_read_back(
    env: dict[str, str], lab_factory: StoreFactory, az_container: str
) -> None:
    source, set_url, target = (f"az://{az_container}/{p}/" for p in ("src", "set", "restored"))
    seed(lab_factory.open(source), OBJECTS)
    copied, restored = _copy_and_restore(env, source, set_url, target)
    n = len(OBJECTS)
    assert copied["paths"] == {"streamed": 0, "server-side": n, "unchanged": 0, "resumed": 0}
    assert copied["server_side_verified_by"] == {"read-back": n}
    assert restored["paths"] == {"server-side (read-back)": n}
    assert read_store(lab_factory.open(target)) == OBJECTS


def test_a_set_that_compresses_streams_even_within_one_service(
    env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str
) -> None:
    source, set_url, target = (f"s3://{s3_bucket}/{p}/" for p in ("src", "set", "restored"))
    seed(lab_factory.open(source), OBJECTS)
    copied, restored = _copy_and_restore(env, source, set_url, target, "--compress")
    assert copied["paths"] == {"streamed": len(OBJECTS), "server-side": 0, "unchanged": 0, "resumed": 0}
    assert copied["server_side_verified_by"] == {}
    assert restored["paths"] == {"streamed": len(OBJECTS)}
    assert read_store(lab_factory.open(target)) == OBJECTS


def test_a_damaged_blob_fails_a_server_side_restore_and_leaves_nothing_of_it_in_the_target(
    env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str
) -> None:
    source, set_url, target = (f"s3://{s3_bucket}/{p}/" for p in ("src", "set", "restored"))
    seed(lab_factory.open(source), {"db.dump": b"rows" * 5000})
    run_json("backup", "copy", source, set_url, "--mode", "full", "--json", "--quiet", env=env)
    set_store = lab_factory.open(set_url)
    (entry,) = open_set(set_store, KeySource(), {}).points()[0].objects
    # Same size, other bytes: the presence check before the restore passes, only the hash can catch it.
    set_store.write(blob_key(entry.blob), io.BytesIO(b"ROWS" * 5000))

    result = drctl("backup", "restore", set_url, target, "--quiet", env=env)
    assert_one_line_error(result, ExitCode.INTEGRITY, "server-side copy", "SHA-256")
    assert read_store(lab_factory.open(target)) == {}


def test_s3_into_azure_falls_back_to_streaming_where_the_service_cannot_read_the_url(
    env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, az_container: str
) -> None:
    # Azurite cannot fetch a URL outside itself (CannotVerifyCopySource): the real service's path is covered
    # by recorded answers (tests/unit/test_azure_put_block_from_url.py); here the fallback is what runs.
    source, set_url, target = f"s3://{s3_bucket}/src/", f"az://{az_container}/set/", f"az://{az_container}/out/"
    seed(lab_factory.open(source), OBJECTS)
    copied, _ = _copy_and_restore(env, source, set_url, target)
    assert copied["server_side_refused"] == "CannotVerifyCopySource"
    assert copied["paths"] == {"streamed": len(OBJECTS), "server-side": 0, "unchanged": 0, "resumed": 0}
    assert read_store(lab_factory.open(target)) == OBJECTS
