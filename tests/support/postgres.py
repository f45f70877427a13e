"""A throwaway PostgreSQL server for tests, started with the lab's binaries (``localstack/pg.py``).

Each server listens on a loopback address of its own (``127.77.X.Y:5432``), so tests in parallel and a lab
database already on ``127.0.0.1`` never collide, keeps its data in a private temporary directory, and is
stopped by its PID and deleted afterwards. Without the lab's PostgreSQL the test is skipped with the reason,
or fails under ``make test`` (``DRCTL_REQUIRE_LAB=1``), as the other lab fixtures do.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from localstack import pg

LAB_DIR = Path(__file__).resolve().parents[2] / ".lab"
PORT = 5432
SUPERUSER = "postgres"
ATTEMPTS = 5
"""Addresses tried before giving up: another test's server may hold a randomly chosen one."""


class PgServer(NamedTuple):
    """Unpacks as ``(host, port, password)``; the password is the ``postgres`` superuser's."""

    host: str
    port: int
    password: str

    def dsn(self, database: str, user: str = SUPERUSER) -> str:
        """A DSN without the password, as the db actions take it."""
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    def connect_kwargs(self, database: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect`` as the superuser."""
        return {
            "host": self.host,
            "port": self.port,
            "user": SUPERUSER,
            "password": self.password,
            "dbname": database,
            "connect_timeout": 5,
        }


def lab_dir() -> Path:
    return Path(os.environ.get("DRCTL_LAB_DIR", str(LAB_DIR)))


def pg_bin_or_skip() -> Path:
    """The lab's PostgreSQL binaries; skip (or fail under ``DRCTL_REQUIRE_LAB=1``) when they are missing."""
    try:
        return pg.pg_bin(lab_dir())
    except pg.PgError as err:
        if os.environ.get("DRCTL_REQUIRE_LAB") == "1":
            pytest.fail(str(err))
        pytest.skip(str(err))


def client_env(password: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a client binary (pg_dump, psql): the password only there, never on a command line."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGPASSWORD": password, **(extra or {})}


def _free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def unused_loopback() -> str:
    """A random ``127.77.X.Y`` address on which nothing listens on :data:`PORT`."""
    for _ in range(50):
        host = f"127.77.{random.randint(1, 254)}.{random.randint(1, 254)}"
        if _free(host, PORT):
            return host
    raise RuntimeError("no free 127.77.X.Y address after 50 tries")


@contextlib.contextmanager
def postgres_server() -> Iterator[PgServer]:
    """Start a fresh server (initdb, start, bounded readiness wait on ``pg_isready``), yield it, stop it."""
    bin_dir = pg_bin_or_skip()
    pg.ensure_reachable(bin_dir)
    who = pg.run_as()
    password = secrets.token_urlsafe(18)
    # Under /tmp itself, not pytest's tmp_path: as root the server runs as the lab user, who cannot enter
    # root's private pytest directories.
    root = Path(tempfile.mkdtemp(prefix="drctl-pg-"))
    who.own(root)
    server: pg.Server | None = None
    try:
        pg.init_cluster(bin_dir, root / "data", password, who)
        last: Exception | None = None
        for _ in range(ATTEMPTS):
            host = unused_loopback()
            server = pg.start_server(bin_dir, root / "data", host, PORT, who, root / "postgres.log")
            try:
                pg.wait_ready(bin_dir, server, timeout_s=60)
                break
            except pg.PgError as err:  # the address was taken between the check and the start: try another
                last = err
                pg.stop_server(server)
                server = None
        if server is None:
            log = (root / "postgres.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"could not start a test PostgreSQL server: {last}\n{log}")
        yield PgServer(server.host, server.port, password)
    finally:
        if server is not None:
            pg.stop_server(server)
        shutil.rmtree(root, ignore_errors=True)


def pg_dump(bin_dir: Path, server: PgServer, database: str, out: Path) -> None:
    """``pg_dump -Fc`` of ``database`` into ``out``, as the superuser."""
    subprocess.run(
        [
            str(bin_dir / "pg_dump"),
            "-Fc",
            "--host",
            server.host,
            "--port",
            str(server.port),
            "--username",
            SUPERUSER,
            "--file",
            str(out),
            database,
        ],
        env=client_env(server.password),
        check=True,
        capture_output=True,
        timeout=120,
    )
