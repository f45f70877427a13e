"""The sample application's data, and the backup set holding its recovery points."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Mapping
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
CUSTOMERS = 20_000
ORDERS = 48_000
ORDERS_ADDED_BY_GENERATION_1 = 4_000
AVATARS = 5


def _token(*parts: object) -> str:
    """A short deterministic hex token, so the sample data is identical on every machine and every run."""
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=6).hexdigest()


def _customer_rows() -> Iterator[str]:
    for i in range(1, CUSTOMERS + 1):
        created = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}"
        yield f"{i}\tcustomer-{i:05d}\tc{i:05d}@example.test\t{_token('key', i)}\t{created}\n"


def _order_rows(count: int) -> Iterator[str]:
    for i in range(1, count + 1):
        cents = int(_token("amount", i), 16) % 100_000
        status = ("paid", "shipped", "open")[i % 3]
        yield f"{i}\t{1 + i % CUSTOMERS}\t{cents}\t{status}\tord-{_token('ord', i)}\n"


def sql_dump(generation: int) -> bytes:
    """A few MiB in ``pg_dump``'s plain format; generation 1 adds orders, as a day of business would."""
    orders = ORDERS + (ORDERS_ADDED_BY_GENERATION_1 if generation >= 1 else 0)
    parts = [
        "-- drctl demo shop: PostgreSQL database dump of 'shop'\n",
        "CREATE TABLE customers (id integer PRIMARY KEY, name text, email text, api_key text, created date);\n",
        "CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customers,"
        " amount_cents integer, status text, reference text);\n",
        "COPY customers (id, name, email, api_key, created) FROM stdin;\n",
        *_customer_rows(),
        "\\.\n",
        "COPY orders (id, customer_id, amount_cents, status, reference) FROM stdin;\n",
        *_order_rows(orders),
        "\\.\n",
    ]
    return "".join(parts).encode()


def _binary(name: str, size: int) -> bytes:
    return hashlib.shake_256(name.encode()).digest(size)


def _invoice_csv(month: int) -> bytes:
    rows = [f"{month:02d}-{n:04d},{int(_token('inv', month, n), 16) % 10_000}.00,EUR\n" for n in range(400)]
    return ("invoice,total,currency\n" + "".join(rows)).encode()


def app_data(generation: int) -> dict[str, bytes]:
    """The sample application's objects at a point in its life: 0, then 1 and 2 with some objects changed."""
    release = ("1.4.0", "1.4.0", "1.5.0")[generation]
    objects = {
        "db/shop.sql": sql_dump(generation),
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
    """Make the bucket hold exactly ``wanted``; unchanged objects are not rewritten, so their etags stay put."""
    current: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        current.update({o["Key"]: o["ETag"].strip('"') for o in page.get("Contents", [])})
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
