"""db.restore and db.check against a real PostgreSQL server (the lab's binaries): a pg_dump put into a backup set
comes back into an empty database, verified, and the checks prove the data did; a damaged set, a wrong password
and an unreachable server fail before anything is touched, each with its one-line message."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator.actions import db_check, db_restore
from orchestrator.actions.base import StepResult, StepStatus
from orchestrator.backup.layout import blob_key
from orchestrator.backup.sets import open_set
from orchestrator.engine.context import StepContext, key_source
from orchestrator.errors import AuthError, IntegrityError, Permanent, Transient
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import copy_in_process, new_key
from tests.support.postgres import PgServer, pg_bin_or_skip, pg_dump, postgres_server, unused_loopback

PW_VAR = "SHOP_DB_PW"
"""Deliberately not a name that looks secret: the executor must mask it because password_env names it."""
ROWS = 250
OBJECT = "db/shop.dump"
LOCAL = StoreFactory({})


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    with postgres_server() as running:
        yield running


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return pg_bin_or_skip()


def admin(server: PgServer, database: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(**server.connect_kwargs(database), autocommit=True)


def new_database(server: PgServer, prefix: str) -> str:
    name = f"{prefix}_{time.monotonic_ns()}"
    with admin(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def scalar(server: PgServer, database: str, sql: str) -> Any:
    with admin(server, database) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


@dataclass(frozen=True)
class Source:
    dump: Path
    sha256: str
    newest: datetime
    set_dir: Path
    point: str


@pytest.fixture(scope="module")
def source(server: PgServer, bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Source:
    """A small shop database, dumped with pg_dump -Fc and backed up (with a non-dump object) into a local set."""
    database = new_database(server, "src")
    base = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    with admin(server, database) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL, committed_at timestamptz NOT NULL)")
        with conn.cursor().copy("COPY orders (id, item, committed_at) FROM STDIN") as copy:
            for i in range(1, ROWS + 1):
                copy.write_row((i, f"item-{i}", base + timedelta(minutes=i, microseconds=i * 7)))
    newest = scalar(server, database, "SELECT max(committed_at) FROM orders")
    root = tmp_path_factory.mktemp("db-source")
    (root / "src" / "db").mkdir(parents=True)
    dump = root / "src" / OBJECT
    pg_dump(bin_dir, server, database, dump)
    (root / "src" / "db" / "notes.dump").write_text("not a pg_dump archive, just text\n" * 20)
    result = copy_in_process(LOCAL, str(root / "src"), str(root / "set"), "full", root / "state")
    return Source(dump, hashlib.sha256(dump.read_bytes()).hexdigest(), newest, root / "set", result.recovery_point)


@pytest.fixture
def pg_restore_spy(bin_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A pg_restore that notes it was run, then runs the real one: proves whether the action got that far."""
    marker = tmp_path / "pg_restore-ran"
    script = tmp_path / "pg_restore"
    script.write_text(f'#!/bin/sh\ntouch "{marker}"\nexec "{bin_dir / "pg_restore"}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, marker


def context(env: Mapping[str, str], factory: StoreFactory = LOCAL, logs: list[str] | None = None) -> StepContext:
    return StepContext(
        step_id="db",
        mode="failover",
        env=dict(env),
        stack=None,
        deadline=None,
        stop=threading.Event(),
        clock=time.monotonic,
        sink=(logs if logs is not None else []).append,
        store_factory=lambda _env: factory,
    )


def restore(server: PgServer, params: Mapping[str, Any], env: Mapping[str, str] | None = None, **kw: Any) -> StepResult:
    env = {PW_VAR: server.password} if env is None else env
    env = {db_restore.PG_BIN_ENV: str(pg_bin_or_skip()), **env}  # not the older pg_restore a PATH may hold
    p = db_restore.Params.model_validate({"password_env": PW_VAR, **params})
    return db_restore.run(p, context(env, **kw))


def check(server: PgServer, database: str, checks: list[dict[str, Any]], **extra: Any) -> StepResult:
    p = db_check.Params.model_validate({"dsn": server.dsn(database), "password_env": PW_VAR, "checks": checks, **extra})
    return db_check.run(p, context({PW_VAR: server.password}))


PROOF: list[dict[str, Any]] = [
    {"name": "orders", "sql": "SELECT count(*) FROM orders", "equals": ROWS},
    {"name": "known_row", "sql": "SELECT item FROM orders WHERE id = 17", "equals": "item-17"},
    {"name": "newest", "sql": "SELECT max(committed_at) FROM orders", "data_timestamp": True},
]


def test_restore_into_an_empty_database_and_prove_the_data(
    server: PgServer, source: Source, pg_restore_spy: tuple[Path, Path]
) -> None:
    spy, marker = pg_restore_spy
    target = new_database(server, "dst")
    logs: list[str] = []
    params = {"set": str(source.set_dir), "object": OBJECT, "dsn": server.dsn(target), "pg_restore": str(spy)}
    result = restore(server, params, logs=logs)
    assert result.status == StepStatus.SUCCEEDED, result.message
    assert marker.exists()
    out = result.outputs
    assert out["recovery_point"] == source.point
    assert (out["object"], out["bytes"], out["sha256"]) == (OBJECT, source.dump.stat().st_size, source.sha256)
    point = open_set(LOCAL.open(str(source.set_dir)), key_source(None, {}), {}).load_point(source.point)
    assert out["point_started"] == point.started.isoformat()
    assert out["point_created"] == point.created.isoformat()
    assert isinstance(out["seconds"], float)
    assert any("verified 'db/shop.dump'" in line for line in logs)

    proved = check(server, target, PROOF)
    assert proved.status == StepStatus.SUCCEEDED, proved.message
    assert proved.outputs["data_timestamp"] == source.newest.astimezone(UTC).isoformat(timespec="microseconds")
    assert json.loads(str(proved.outputs["values"])) == {
        "orders": str(ROWS),
        "known_row": "item-17",
        "newest": source.newest.isoformat(),
    }
    assert (proved.outputs["passed"], proved.outputs["failed"]) == (3, 0)

    # A repeat (clean: drop and recreate in one transaction) leaves the database as one restore did.
    again = restore(server, params)
    assert again.status == StepStatus.SUCCEEDED, again.message
    assert scalar(server, target, "SELECT count(*) FROM orders") == ROWS


def test_checks_that_fail_say_which_with_value_and_expectation(server: PgServer, source: Source) -> None:
    target = new_database(server, "chk")
    params = {"set": str(source.set_dir), "object": OBJECT, "dsn": server.dsn(target), "point": source.point}
    assert restore(server, params).status == StepStatus.SUCCEEDED
    checks: list[dict[str, Any]] = [
        {"name": "orders", "sql": "SELECT count(*) FROM orders", "min": 1000},
        {"name": "known_row", "sql": "SELECT item FROM orders WHERE id = 17", "equals": "item-17"},
        {"name": "writes", "sql": "DELETE FROM orders RETURNING 1", "not_null": True},
        {"name": "ghost", "sql": "SELECT item FROM orders WHERE id = -1", "not_null": True},
        {"name": "two", "sql": "SELECT 1; DROP TABLE orders", "equals": 1},
    ]
    result = check(server, target, checks)
    assert result.status == StepStatus.FAILED
    assert result.message.startswith(f"4 of 5 checks failed on {server.dsn(target)}: ")
    assert "orders = 250 (expected >= 1000)" in result.message
    assert "writes failed: cannot execute DELETE in a read-only transaction (expected not null)" in result.message
    assert "ghost = null (expected not null)" in result.message
    assert "two failed: cannot insert multiple commands into a prepared statement (expected = 1)" in result.message
    assert "\n" not in result.message
    assert (result.outputs["passed"], result.outputs["failed"]) == (1, 4)
    assert "data_timestamp" not in result.outputs
    assert scalar(server, target, "SELECT count(*) FROM orders") == ROWS  # the read-only transaction held


def test_a_corrupt_blob_fails_before_pg_restore_and_leaves_the_database_alone(
    server: PgServer, source: Source, pg_restore_spy: tuple[Path, Path], tmp_path: Path
) -> None:
    spy, marker = pg_restore_spy
    damaged = tmp_path / "set"
    shutil.copytree(source.set_dir, damaged)
    point = open_set(LOCAL.open(str(damaged)), key_source(None, {}), {}).load_point(source.point)
    (entry,) = [e for e in point.objects if e.key == OBJECT]
    blob = damaged / blob_key(entry.blob)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped: only the SHA-256 can tell
    blob.write_bytes(bytes(data))
    target = new_database(server, "dmg")
    with admin(server, target) as conn:
        conn.execute("CREATE TABLE sentinel (note text)")
        conn.execute("INSERT INTO sentinel VALUES ('still here')")

    params = {"set": str(damaged), "object": OBJECT, "dsn": server.dsn(target), "pg_restore": str(spy)}
    with pytest.raises(IntegrityError) as caught:
        restore(server, params)
    message = str(caught.value)
    assert "is corrupt: its SHA-256 does not match the one recorded" in message
    assert f"pg_restore was not run and {server.dsn(target)} is unchanged" in message
    assert "\n" not in message
    assert not marker.exists()
    assert scalar(server, target, "SELECT note FROM sentinel") == "still here"
    assert scalar(server, target, "SELECT to_regclass('public.orders') IS NULL") is True


def test_an_object_that_is_not_a_dump_fails_in_one_transaction(server: PgServer, source: Source) -> None:
    target = new_database(server, "bad")
    with admin(server, target) as conn:
        conn.execute("CREATE TABLE sentinel (note text)")
    params = {"set": str(source.set_dir), "object": "db/notes.dump", "dsn": server.dsn(target)}
    with pytest.raises(Permanent) as caught:
        restore(server, params)
    message = str(caught.value)
    assert "'db/notes.dump' of " in message
    assert "is not a usable pg_dump custom-format archive" in message
    assert "dump with pg_dump -Fc" in message
    assert "\n" not in message
    assert scalar(server, target, "SELECT count(*) FROM sentinel") == 0


def test_a_wrong_password_fails_with_one_line_and_no_password(
    server: PgServer, source: Source, pg_restore_spy: tuple[Path, Path]
) -> None:
    spy, marker = pg_restore_spy
    wrong = "not-the-password-1234"
    params = {"set": str(source.set_dir), "object": OBJECT, "dsn": server.dsn("postgres"), "pg_restore": str(spy)}
    with pytest.raises(AuthError) as caught:
        restore(server, params, env={PW_VAR: wrong})
    message = str(caught.value)
    assert message == (
        f"PostgreSQL at {server.host}:{server.port} refused the password for user postgres: check the password in "
        f"the environment variable {PW_VAR} (password_env) (and the user in the DSN)"
    )
    assert wrong not in message
    assert server.password not in message
    assert not marker.exists()


def test_an_unreachable_server_is_transient(source: Source) -> None:
    host = unused_loopback()
    params = {"set": str(source.set_dir), "object": OBJECT, "dsn": f"postgresql://postgres@{host}:5432/shop"}
    with pytest.raises(Transient) as caught:
        db_restore.run(db_restore.Params.model_validate(params), context({}))
    message = str(caught.value)
    assert message.startswith(f"cannot reach PostgreSQL at {host}:5432 (Connection refused")
    assert message.endswith("accepts TCP connections from here")
    assert "\n" not in message

    p = db_check.Params.model_validate({"dsn": params["dsn"], "checks": [PROOF[0]]})
    with pytest.raises(Transient, match="cannot reach PostgreSQL"):
        db_check.run(p, context({}))


@pytest.mark.lab
def test_restore_from_an_encrypted_set_in_azurite(
    server: PgServer,
    source: Source,
    lab_env: dict[str, str],
    lab_factory: StoreFactory,
    az_container: str,
    tmp_path: Path,
) -> None:
    env = {**lab_env, "DRCTL_BACKUP_KEY": new_key(), PW_VAR: server.password}
    set_url = f"az://{az_container}/shop"
    result = copy_in_process(
        lab_factory,
        str(source.dump.parent.parent),
        set_url,
        "full",
        tmp_path / "state",
        key_env="DRCTL_BACKUP_KEY",
        env=env,
        encrypt=True,
    )
    target = new_database(server, "az")
    params = {"set": set_url, "object": OBJECT, "dsn": server.dsn(target), "at": datetime.now(UTC).isoformat()}
    restored = restore(server, params, env=env, factory=lab_factory)
    assert restored.status == StepStatus.SUCCEEDED, restored.message
    assert restored.outputs["recovery_point"] == result.recovery_point
    assert restored.outputs["sha256"] == source.sha256
    proved = check(server, target, PROOF)
    assert proved.status == StepStatus.SUCCEEDED, proved.message
    assert proved.outputs["data_timestamp"] == source.newest.astimezone(UTC).isoformat(timespec="microseconds")
