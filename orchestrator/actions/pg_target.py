"""The PostgreSQL target of the ``db.*`` actions: a DSN without a password, where the password comes from, and
how a connection failure reads.

A DSN is ``postgresql://USER@HOST[:PORT]/DBNAME`` (``postgres://`` too; a few libpq options such as
``?sslmode=require`` may follow). The password never travels in the DSN, which a runbook, a plan and a journal
show in full: it comes from ``password_env`` (the name of an environment variable, whose value the executor then
masks like any secret) or ``password_file`` (a file whose content, trailing newline removed, is the password);
with neither, libpq's own defaults apply (``~/.pgpass``, trust). The password reaches psycopg only as the
``password`` keyword argument and pg_restore only as ``PGPASSWORD`` in its environment: never a command line
(which ``ps`` shows to every user), a message, an output or a log.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
from pydantic import AfterValidator, ConfigDict, StrictStr, model_validator

from orchestrator.actions.base import ActionParams
from orchestrator.engine.redact import redact
from orchestrator.errors import AuthError, DrError, InvalidInput, NotFound, Permanent, PermissionDenied, Transient
from orchestrator.runbook.fields import Name, drctl_error
from orchestrator.runbook.interpolate import has_references

DEFAULT_PORT = 5432
SCHEMES = ("postgresql", "postgres")
OPTIONS = frozenset({"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "target_session_attrs"})
"""The libpq options a DSN may carry; anything else (``password``, ``passfile``, ``options``) is refused."""
DSN_EXAMPLE = "postgresql://app@10.20.1.15:5432/shop"
DSN_CREDENTIAL_REFUSAL = (
    "must not carry a password (runbooks, plans and journals show the DSN): remove it and give password_env "
    "(the name of an environment variable holding it) or password_file instead"
)


class DsnError(ValueError):
    """A DSN that cannot be used; the message never repeats a password the DSN may hold."""


@dataclass(frozen=True)
class PgTarget:
    """A parsed DSN. ``url`` is safe to show: it holds no password by construction."""

    user: str
    host: str
    port: int
    dbname: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{self.user}@{host}:{self.port}/{self.dbname}"

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect`` and ``make_conninfo``, without the password."""
        return {"host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname, **dict(self.options)}

    def conninfo(self) -> str:
        """A libpq connection string without the password, for a client binary's ``--dbname``."""
        return psycopg.conninfo.make_conninfo(**self.connect_kwargs())


def _has_password(text: str) -> bool:
    netloc = text.partition("://")[2].split("/", 1)[0]
    userinfo, at, _ = netloc.rpartition("@")
    if at and ":" in userinfo:
        return True
    query = urlsplit(text).query if "?" in text else ""
    return any(k in ("password", "passfile") for k, _ in parse_qsl(query, keep_blank_values=True))


def parse_dsn(text: str) -> PgTarget:
    """The target a DSN names; ``DsnError`` (naming the fix) when it is not one, or holds a password."""
    if _has_password(text):
        raise DsnError(f"the DSN {DSN_CREDENTIAL_REFUSAL}")
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES:
        raise DsnError(f"{text!r} is not a PostgreSQL DSN: write it as {DSN_EXAMPLE}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise DsnError(f"{text!r} has a port that is not a number from 1 to 65535, e.g. {DSN_EXAMPLE}") from None
    user, host, dbname = unquote(parts.username or ""), parts.hostname or "", unquote(parts.path.lstrip("/"))
    missing = [name for name, value in (("user", user), ("host", host), ("database", dbname)) if not value]
    if missing:
        raise DsnError(f"{text!r} names no {' and no '.join(missing)}: write it as {DSN_EXAMPLE}")
    if "/" in dbname:
        raise DsnError(f"{text!r} names database {dbname!r}, which has a '/': write it as {DSN_EXAMPLE}")
    options = tuple(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted({k for k, _ in options} - OPTIONS)
    if unknown:
        raise DsnError(f"{text!r} has option {unknown[0]!r}; a DSN here may carry only {', '.join(sorted(OPTIONS))}")
    return PgTarget(user, host, port, dbname, options)


def _dsn(value: str) -> str:
    if _has_password(value):
        # Said without the value: it holds a password.
        raise drctl_error(DSN_CREDENTIAL_REFUSAL)
    if not has_references(value):
        try:
            parse_dsn(value)
        except DsnError as err:
            raise drctl_error(str(err)) from None
    return value


DsnText = Annotated[str, AfterValidator(_dsn)]
"""A PostgreSQL DSN without a password; checked in full unless it holds a run-time reference."""


class PgTargetParams(ActionParams):
    """``dsn`` and at most one of ``password_env`` / ``password_file``; shared by every ``db.*`` action.

    Validation errors never quote the input: a DSN resolved at run time may hold a password after all."""

    model_config = ConfigDict(hide_input_in_errors=True)

    dsn: DsnText
    password_env: Name | None = None
    password_file: StrictStr | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> Self:
        if self.password_env is not None and self.password_file is not None:
            raise drctl_error("give 'password_env' or 'password_file', not both")
        return self

    def target(self) -> PgTarget:
        """The DSN as resolved at run time (references filled in), checked again."""
        try:
            return parse_dsn(self.dsn)
        except DsnError as err:
            raise InvalidInput(f"dsn: {err}") from None

    def password_source(self) -> str:
        """Where the password comes from, for messages: never the password itself."""
        if self.password_env is not None:
            return f"the environment variable {self.password_env} (password_env)"
        if self.password_file is not None:
            return f"{self.password_file} (password_file)"
        return "no password_env or password_file"

    def password(self, env: Mapping[str, str]) -> str | None:
        """The password from its source, or None when the step names none."""
        if self.password_env is not None:
            value = env.get(self.password_env)
            if not value:
                raise AuthError(
                    f"password_env names {self.password_env}, which is not set: export it with the database password"
                )
            return value
        if self.password_file is not None:
            try:
                value = Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as err:
                raise AuthError(
                    f"cannot read password_file {self.password_file} ({err.strerror or type(err).__name__}): "
                    "check the path and that drctl may read it"
                ) from None
            if not value:
                raise AuthError(f"password_file {self.password_file} is empty: write the database password into it")
            return value
        return None


# -- connections and their failures -------------------------------------------------------------------------

_UNREACHABLE = (
    "connection refused",
    "timeout expired",
    "timed out",
    "could not connect",
    "no route to host",
    "network is unreachable",
    "failed to resolve host",
    "could not translate host name",
    "server closed the connection unexpectedly",
    "connection reset",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "consuming input failed",
)


def _reason(text: str) -> str:
    """The useful part of a libpq message: the first line, after libpq's ``... failed:`` preamble."""
    line = text.strip().splitlines()[0] if text.strip() else "no detail"
    for marker in ("failed: ", "error: "):
        if marker in line:
            line = line.rsplit(marker, 1)[1]
    return line.replace("FATAL:  ", "").strip()


def classify(text: str, target: PgTarget, source: str, password: str | None) -> DrError:
    """A libpq or server message (from psycopg or a client binary's stderr) as a one-line ``DrError`` that
    names the fix. Only connection-level failures, which may pass on a retry, are ``Transient``."""
    clean = redact(text, (password,) if password else ())
    low = clean.lower()
    where = f"{target.host}:{target.port}"
    if "password authentication failed" in low:
        return AuthError(
            f"PostgreSQL at {where} refused the password for user {target.user}: "
            f"check the password in {source} (and the user in the DSN)"
        )
    if "no password supplied" in low or "password is required" in low:
        return AuthError(
            f"PostgreSQL at {where} asks user {target.user} for a password and none was given: "
            "set password_env or password_file"
        )
    if "role" in low and "does not exist" in low:
        return AuthError(f"PostgreSQL at {where} has no user {target.user}: fix the user in the DSN or create it")
    if "database" in low and "does not exist" in low:
        return NotFound(f"PostgreSQL at {where} has no database {target.dbname}: create it (createdb) or fix the DSN")
    if "pg_hba.conf" in low:
        return PermissionDenied(
            f"PostgreSQL at {where} does not accept user {target.user} from this host ({_reason(clean)}): "
            "add a pg_hba.conf entry for it"
        )
    if any(marker in low for marker in _UNREACHABLE):
        return Transient(
            f"cannot reach PostgreSQL at {where} ({_reason(clean)}): check the host and port in the DSN and that "
            "the server is up and accepts TCP connections from here"
        )
    return Permanent(f"PostgreSQL at {where}: {_reason(clean)}")


def translate(
    err: psycopg.Error, target: PgTarget, source: str, password: str | None, *, lost: bool = False
) -> DrError:
    """A psycopg error as a ``DrError``. A connection that was ``lost`` (broken after it was made) and the
    connection-class SQLSTATEs (08xxx, 57P0x: admin shutdown, crash) are ``Transient``."""
    state = err.sqlstate or ""
    if lost or state.startswith(("08", "57P0")):
        text = redact(str(err), (password,) if password else ())
        return Transient(
            f"lost the connection to PostgreSQL at {target.host}:{target.port} ({_reason(text)}): run the step again"
        )
    return classify(str(err), target, source, password)


@contextlib.contextmanager
def connect(
    target: PgTarget,
    password: str | None,
    source: str,
    *,
    timeout_s: float,
    read_only: bool = False,
    statement_timeout_ms: int | None = None,
) -> Iterator[psycopg.Connection[Any]]:
    """A connection (closed on exit); a failure to connect is raised as a ``DrError`` by :func:`classify`."""
    kwargs = target.connect_kwargs()
    kwargs["connect_timeout"] = max(1, min(30, int(timeout_s)))
    if statement_timeout_ms is not None:
        kwargs["options"] = f"-c statement_timeout={max(1, statement_timeout_ms)}"
    if password is not None:
        kwargs["password"] = password
    try:
        conn = psycopg.connect(**kwargs)
    except psycopg.Error as err:
        raise translate(err, target, source, password) from None
    try:
        conn.read_only = read_only
        yield conn
    finally:
        conn.close()


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
