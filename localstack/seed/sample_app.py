"""The sample application's data, and the backup set holding its recovery points."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from localstack.seed.clients import Clients
from localstack.seed.errors import SeedError
from localstack.seed.outputs import Names
from orchestrator.backup.copy import CopyOptions, execute_copy, plan_copy
from orchestrator.backup.crypto import KeySource
from orchestrator.backup.journal import CopyJournal
from orchestrator.backup.manifest import Mode
from orchestrator.backup.sets import BackupSet, NewSetOptions, open_or_create_set
from orchestrator.providers.factory import StoreFactory

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

POINTS_WANTED = 3
AVATARS = 5
PRODUCTION_PREFIX = "db/"
"""Production's own objects (its scheduled database dumps): the sample files never overwrite or delete them."""


def _token(*parts: object) -> str:
    """A short deterministic hex token, so the sample data is identical on every machine and every run."""
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=6).hexdigest()


def _binary(name: str, size: int) -> bytes:
    return hashlib.shake_256(name.encode()).digest(size)


def _invoice_csv(month: int) -> bytes:
    rows = [f"{month:02d}-{n:04d},{int(_token('inv', month, n), 16) % 10_000}.00,EUR\n" for n in range(400)]
    return ("invoice,total,currency\n" + "".join(rows)).encode()


def app_data(generation: int) -> dict[str, bytes]:
    """The sample application's files at a point in its life: 0, then 1 and 2 with some objects changed. Its
    database is not among them: production's db instance dumps it under ``db/`` on its own schedule."""
    release = ("1.4.0", "1.4.0", "1.5.0")[generation]
    objects = {
        "config/app.yaml": f"release: {release}\ndatabase: shop\nreplicas: 2\n".encode(),
    }
    for i in range(AVATARS - (1 if generation >= 2 else 0)):  # generation 2: a user deleted their avatar
        objects[f"uploads/avatars/user-{i:04d}.png"] = _binary(f"avatar-{i}", 48 * 1024)
    for month in range(1, 4 + (1 if generation >= 1 else 0)):  # generation 1: April's invoices arrive
        objects[f"uploads/invoices/2026-{month:02d}.csv"] = _invoice_csv(month)
    return objects


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sync_source(s3: S3Client, bucket: str, wanted: Mapping[str, bytes]) -> None:
    """Make the bucket hold exactly ``wanted`` beside production's dumps; unchanged objects are not rewritten,
    so their etags stay put."""
    current: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        current.update(
            {
                o["Key"]: o["ETag"].strip('"')
                for o in page.get("Contents", [])
                if not o["Key"].startswith(PRODUCTION_PREFIX)
            }
        )
    for key, data in wanted.items():
        if current.get(key) != _md5(data):
            s3.put_object(Bucket=bucket, Key=key, Body=data)
    stale = sorted(set(current) - set(wanted))
    if stale:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale]})


def open_backup_set(factory: StoreFactory, set_url: str) -> BackupSet:
    # Compressed like a production set; unencrypted so a lab drill needs no key to restore it.
    bset = open_or_create_set(
        factory.open(set_url), KeySource(), factory.env, NewSetOptions(compression=True), datetime.now(UTC)
    )
    if bset is None:  # only a dry run (create=False) returns None
        raise SeedError(f"could not open or create the backup set {set_url}")
    return bset


def take_point(factory: StoreFactory, source_url: str, bset: BackupSet, mode: Mode, journal: CopyJournal) -> str:
    source = factory.open(source_url)
    options = CopyOptions(mode=mode)
    return execute_copy(plan_copy(source, bset, options), source, bset, options, journal).recovery_point


def ensure_recovery_points(clients: Clients, names: Names) -> list[str]:
    """One full then incrementals of a changing source, until the set has :data:`POINTS_WANTED` points."""
    bset = open_backup_set(clients.factory, names.set_url)
    have = len(bset.point_ids())
    if have >= POINTS_WANTED:
        return bset.point_ids()
    # The journal only lets a crashed copy resume; a run's own temporary one keeps the seeder stateless.
    with tempfile.TemporaryDirectory(prefix="drctl-seed-") as tmp:
        journal = CopyJournal(Path(tmp) / "journal.sqlite")
        try:
            for generation in range(have, POINTS_WANTED):
                sync_source(clients.s3_primary, names.app_data, app_data(generation))
                mode: Mode = "full" if generation == 0 else "incremental"
                take_point(clients.factory, names.source_url, bset, mode, journal)
        finally:
            journal.close()
    return bset.point_ids()


def ensure_vault_point(clients: Clients, names: Names) -> list[str]:
    """The vault already holds a full point of the data, as it would after the nightly cross-cloud copy: the
    failover runbook's copy into it is then incremental, and a failover whose copy fails still has a point
    to restore (the report's RPO shows its age)."""
    bset = open_backup_set(clients.factory, names.vault_set_url)
    if not bset.point_ids():
        with tempfile.TemporaryDirectory(prefix="drctl-seed-") as tmp:
            journal = CopyJournal(Path(tmp) / "journal.sqlite")
            try:
                take_point(clients.factory, names.source_url, bset, "full", journal)
            finally:
                journal.close()
    return bset.point_ids()
