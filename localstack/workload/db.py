"""The db tier: PostgreSQL on the instance's private address; the primary also dumps it into S3."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import boto3
import psycopg
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from localstack.pg import (
    DB_NAME,
    DB_USER,
    PASSWORD_VAR,
    create_app_role,
    init_cluster,
    run_as,
    start_server,
    stop_server,
    wait_ready,
)
from localstack.workload.identity import Identity

PORT = 5432
SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY,
    customer text NOT NULL,
    amount_cents integer NOT NULL CHECK (amount_cents > 0),
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS orders_committed_at ON orders (committed_at);
"""
OPENING_ORDERS = 500
"""Orders the primary starts with, spread over the hour before it first booted: a restore has rows to count
even when the writer has only just started."""


def ensure_schema(me: Identity, password: str) -> None:
    with psycopg.connect(host=me.private_ip, port=PORT, user=DB_USER, password=password, dbname=DB_NAME) as conn:
        conn.execute(SCHEMA)
        (count,) = conn.execute("SELECT count(*) FROM orders").fetchone() or (0,)
        if count == 0:
            conn.execute(
                "INSERT INTO orders (customer, amount_cents, committed_at) "
                "SELECT 'customer-' || (g %% 97), 100 + (g * 37) %% 9900, now() - (%s - g) * interval '7 seconds' "
                "FROM generate_series(1, %s) AS g",
                (OPENING_ORDERS, OPENING_ORDERS),
            )


def dump_loop(me: Identity, password: str, pg_bin: Path, target: str, every_s: float, stop: threading.Event) -> None:
    """``pg_dump -Fc`` into ``target`` (s3://bucket/key) every ``every_s``: the primary's scheduled backup."""
    where = urlparse(target)
    s3 = boto3.client("s3", region_name=me.region)
    env = {**os.environ, "PGPASSWORD": password}
    while not stop.is_set():
        started = time.monotonic()
        with tempfile.NamedTemporaryFile(dir=me.disk, suffix=".dump") as spool:
            argv = [str(pg_bin / "pg_dump"), "-Fc", "-h", me.private_ip, "-p", str(PORT), "-U", DB_USER]
            done = subprocess.run(
                [*argv, "-f", spool.name, DB_NAME],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode == 0:
                try:
                    # One PUT of the whole file: S3 never shows a half-written dump under the key.
                    s3.upload_file(spool.name, where.netloc, where.path.lstrip("/"))
                except (BotoCoreError, ClientError, S3UploadFailedError) as err:
                    # The schedule outlives a failed upload (a bucket being replaced, S3 busy): the next one retries.
                    print(f"db: uploading the dump to {target} failed: {err}", flush=True)
                else:
                    size = Path(spool.name).stat().st_size
                    print(f"db: dumped {size} bytes to {target} in {time.monotonic() - started:.2f}s", flush=True)
            else:
                print(f"db: pg_dump failed: {done.stderr.strip()}", flush=True)
        stop.wait(max(0.1, every_s - (time.monotonic() - started)))


def serve(primary: bool, dump_to: str | None, dump_every_s: float, stop: threading.Event) -> None:
    me = Identity.from_env()
    password = os.environ[PASSWORD_VAR]
    pg_bin = Path(os.environ["DRCTL_LAB_PG_BIN"])
    data = Path(me.disk) / "pgdata"
    who = run_as()  # PostgreSQL refuses to run as root
    fresh = init_cluster(pg_bin, data, password, who)
    if fresh:
        create_app_role(pg_bin, data, password, who)
    server = start_server(pg_bin, data, me.private_ip, PORT, who, Path(me.disk) / "postgres.log")
    try:
        wait_ready(pg_bin, server)
        if primary:
            ensure_schema(me, password)
        print(f"db: {'new' if fresh else 'existing'} cluster serving on {me.private_ip}:{PORT}", flush=True)
        if dump_to:
            dump_loop(me, password, pg_bin, dump_to, dump_every_s, stop)
        else:
            while not stop.wait(1.0):
                if server.process.poll() is not None:
                    print(f"db: postgres exited with {server.process.returncode}", flush=True)
                    return
    finally:
        stop_server(server)
