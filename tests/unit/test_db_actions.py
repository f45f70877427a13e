"""db.restore, db.check and http.check's JSON assertions without a database: parameter validation, the drill's
ownership rule, the one-line messages failures become, what pg_restore is given (never a password), and that a
run whose db step fails prints and journals no password."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from orchestrator.actions import db_check, db_restore, http_check
from orchestrator.actions.base import StepStatus
from orchestrator.actions.pg_target import PgTarget, classify, parse_dsn
from orchestrator.actions.registry import REGISTRY
from orchestrator.drill.scope import TAG_RUN, DrillScope
from orchestrator.engine.context import StepContext
from orchestrator.engine.events import PrintObserver, RunEvent
from orchestrator.engine.executor import Executor, RunOptions
from orchestrator.engine.journal import RunJournal, RunStatus
from orchestrator.engine.redact import named_secret_envs
from orchestrator.errors import AuthError, NotFound, Permanent, PermissionDenied, Transient
from orchestrator.providers import aws_ec2
from orchestrator.runbook.loader import load_runbook
from orchestrator.runbook.problems import RunbookInvalid
from tests.support.fake_compute import FakeCompute

RUN = "20261203T120000Z-abcdef12"
DSN = "postgresql://app@10.20.1.15:5432/shop"
RESTORE = {"set": "s3://vault/db/", "object": "db/shop.dump", "dsn": DSN}
CHECK = {"name": "orders", "sql": "SELECT count(*) FROM orders", "min": 1}
TARGET = PgTarget("app", "10.20.1.15", 5432, "shop")


def context(env: Mapping[str, str] | None = None, drill: DrillScope | None = None) -> StepContext:
    logs: list[str] = []
    return StepContext(
        step_id="db",
        mode="drill" if drill is not None else "failover",
        env=dict(env or {}),
        stack=None,
        deadline=None,
        stop=threading.Event(),
        clock=time.monotonic,
        sink=logs.append,
        run_id=RUN,
        drill=drill,
    )


def refused(params: type[Any], value: Mapping[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        params.model_validate(value)
    return str(caught.value)


# -- registration and parameters -----------------------------------------------------------------------------


def test_both_actions_are_registered_with_their_outputs() -> None:
    assert REGISTRY.get("db.restore") is db_restore.SPEC
    assert REGISTRY.get("db.check") is db_check.SPEC
    assert db_restore.SPEC.idempotent
    assert db_check.SPEC.idempotent
    assert {"recovery_point", "point_started", "object", "bytes", "sha256", "seconds"} <= db_restore.SPEC.outputs
    assert db_check.SPEC.outputs == {"values", "passed", "failed", "data_timestamp"}
    assert {"status", "elapsed_ms", "checked"} == http_check.SPEC.outputs


def test_restore_defaults() -> None:
    p = db_restore.Params.model_validate({**RESTORE, "password_env": "SHOP_PW"})
    assert (p.set_, p.object_, p.clean, p.jobs, p.point, p.at) == (
        "s3://vault/db/",
        "db/shop.dump",
        True,
        1,
        None,
        None,
    )
    assert p.timeout == timedelta(minutes=30)
    at = db_restore.Params.model_validate({**RESTORE, "at": "2026-11-26T09:30"}).at
    assert at == datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("module", [db_restore, db_check])
def test_a_dsn_with_a_password_is_refused_without_repeating_it(module: Any) -> None:
    base = RESTORE if module is db_restore else {"checks": [CHECK]}
    for dsn in ("postgresql://app:s3cr3t-pw@db:5432/shop", "postgresql://app@db/shop?password=s3cr3t-pw"):
        message = refused(module.Params, {**base, "dsn": dsn})
        assert "must not carry a password" in message
        assert "password_env" in message
        assert "password_file" in message
        assert "s3cr3t-pw" not in message


def test_a_dsn_with_a_password_in_a_runbook_is_refused_without_repeating_it(tmp_path: Path) -> None:
    step = {"id": "r", "action": "db.restore", "with": {**RESTORE, "dsn": "postgresql://app:hunter2-pw@db/shop"}}
    doc = {"apiVersion": "drctl/v1", "kind": "Runbook", "metadata": {"name": "t"}, "spec": {"steps": [step]}}
    path = tmp_path / "rb.yaml"
    path.write_text(json.dumps(doc))
    with pytest.raises(RunbookInvalid) as caught:
        load_runbook(path)
    assert "must not carry a password" in str(caught.value)
    assert "hunter2-pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("module", "params", "message"),
    [
        (
            db_restore,
            {**RESTORE, "password_env": "PW", "password_file": "/run/pw"},
            "give 'password_env' or 'password_file', not both",
        ),
        (db_check, {"dsn": DSN, "checks": [CHECK], "password_env": "PW", "password_file": "/x"}, "not both"),
        (
            db_restore,
            {**RESTORE, "pasword_env": "PW"},
            "unknown key 'pasword_env' in 'with'; did you mean 'password_env'?",
        ),
        (db_restore, {**RESTORE, "password_env": "SHOP-PW"}, "'SHOP-PW' is not a valid name"),
        (db_restore, {**RESTORE, "point": "rp-1", "at": "2026-01-01"}, "give 'point' or 'at', not both"),
        (db_restore, {**RESTORE, "jobs": 4, "clean": False}, "jobs > 1 restores without one transaction"),
        (db_restore, {**RESTORE, "jobs": 0}, "greater than or equal to 1"),
        (db_restore, {**RESTORE, "dsn": "mysql://app@db/shop"}, "is not a PostgreSQL DSN: write it as postgresql://"),
        (db_restore, {**RESTORE, "dsn": "postgresql://db:5432/shop"}, "names no user"),
        (db_restore, {**RESTORE, "dsn": "postgresql://app@db:5432"}, "names no database"),
        (db_restore, {**RESTORE, "dsn": "postgresql://app@db:99999/shop"}, "has a port that is not a number"),
        (db_restore, {**RESTORE, "dsn": "postgresql://app@db/shop?options=-c%20x"}, "has option 'options'"),
        (db_restore, {**RESTORE, "resource_group": "rg"}, "'resource_group' applies to cloud: azure only"),
        (db_restore, {"set": "s3://vault/", "dsn": DSN}, "object"),
        (db_check, {"dsn": DSN, "checks": []}, "at least 1 item"),
        (db_check, {"dsn": DSN, "checks": [{**CHECK, "colour": "red"}]}, "unknown key 'colour' in a check"),
        (db_check, {"dsn": DSN, "checks": [{**CHECK, "min": None}]}, "needs an expectation: min, equals or not_null"),
        (db_check, {"dsn": DSN, "checks": [{**CHECK, "equals": 3}]}, "gives min and equals: give one expectation"),
        (db_check, {"dsn": DSN, "checks": [CHECK, CHECK]}, "check name 'orders' is used twice"),
        (
            db_check,
            {
                "dsn": DSN,
                "checks": [
                    {"name": "a", "sql": "SELECT max(t) FROM x", "data_timestamp": True},
                    {"name": "b", "sql": "SELECT max(t) FROM y", "data_timestamp": True, "not_null": True},
                ],
            },
            "checks 'a', 'b' are all marked data_timestamp: mark at most one",
        ),
        (db_check, {"dsn": DSN, "checks": [{**CHECK, "data_timestamp": True}]}, "min compares numbers"),
    ],
)
def test_db_params_refuse_mistakes(module: Any, params: dict[str, object], message: str) -> None:
    assert message in refused(module.Params, params)


def test_dsns_parse_and_references_wait_for_run_time() -> None:
    assert parse_dsn("postgres://app@db.internal/shop") == PgTarget("app", "db.internal", 5432, "shop")
    target = parse_dsn("postgresql://app%40corp@[fd00::5]:6432/shop?sslmode=require")
    assert (target.user, target.host, target.port, target.options) == (
        "app@corp",
        "fd00::5",
        6432,
        (("sslmode", "require"),),
    )
    assert target.url == "postgresql://app@corp@[fd00::5]:6432/shop"
    late = db_restore.Params.model_validate({**RESTORE, "dsn": "postgresql://app@${steps.db.outputs.private_ip}/shop"})
    assert late.dsn.startswith("postgresql://app@${steps.")
    check = db_check.Params.model_validate(
        {"dsn": DSN, "checks": [{"name": "n", "sql": "SELECT max(t) FROM x", "data_timestamp": True}]}
    )
    assert check.checks[0].expectation() == "a timestamptz"


# -- the password ------------------------------------------------------------------------------------------


def test_the_password_comes_from_its_source_and_a_missing_one_says_so(tmp_path: Path) -> None:
    p = db_check.Params.model_validate({"dsn": DSN, "checks": [CHECK], "password_env": "SHOP_PW"})
    assert p.password({"SHOP_PW": "pw-from-env"}) == "pw-from-env"
    with pytest.raises(AuthError, match="password_env names SHOP_PW, which is not set: export it"):
        p.password({})
    secret = tmp_path / "pw"
    secret.write_text("pw-from-file\n")
    from_file = db_check.Params.model_validate({"dsn": DSN, "checks": [CHECK], "password_file": str(secret)})
    assert from_file.password({}) == "pw-from-file"
    gone = db_check.Params.model_validate({"dsn": DSN, "checks": [CHECK], "password_file": str(tmp_path / "none")})
    with pytest.raises(AuthError, match=r"cannot read password_file .*none \(No such file or directory\)"):
        gone.password({})
    assert db_check.Params.model_validate({"dsn": DSN, "checks": [CHECK]}).password({"PGPASSWORD": "x"}) is None


def test_pg_restore_gets_the_password_only_through_its_environment(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    argv = db_restore.restore_command("/usr/bin/pg_restore", TARGET, dump, clean=True, jobs=1)
    assert argv[:4] == ["/usr/bin/pg_restore", "--no-owner", "--exit-on-error", "--no-password"]
    assert argv[-1] == str(dump)
    assert {"--single-transaction", "--clean", "--if-exists"} <= set(argv)
    assert not any("password=" in arg.lower() or "PGPASSWORD" in arg for arg in argv)
    parallel = db_restore.restore_command("pg_restore", TARGET, dump, clean=True, jobs=4)
    assert "--single-transaction" not in parallel
    assert parallel[parallel.index("--jobs") + 1] == "4"
    assert "--clean" not in db_restore.restore_command("pg_restore", TARGET, dump, clean=False, jobs=1)
    env = db_restore.restore_env({"PATH": "/bin", "PGHOST": "prod-db", "AWS_SECRET_ACCESS_KEY": "k"}, "pw-1234")
    assert env == {"PATH": "/bin", "LC_ALL": "C", "LC_MESSAGES": "C", "PGPASSWORD": "pw-1234"}
    assert "PGPASSWORD" not in db_restore.restore_env({"PATH": "/bin"}, None)


def test_a_missing_pg_restore_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="pg_restore is not on PATH: install the PostgreSQL client tools"):
        db_restore.find_pg_restore(None, {"PATH": str(tmp_path)})
    with pytest.raises(NotFound, match=f"DRCTL_PG_BIN is {tmp_path}, which holds no pg_restore"):
        db_restore.find_pg_restore(None, {"DRCTL_PG_BIN": str(tmp_path), "PATH": "/usr/bin:/bin"})
    with pytest.raises(NotFound, match=r"pg_restore /nowhere/pg_restore is not an executable file"):
        db_restore.find_pg_restore("/nowhere/pg_restore", {})
    binary = tmp_path / "pg_restore"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert db_restore.find_pg_restore(None, {"DRCTL_PG_BIN": str(tmp_path)}) == str(binary)
    assert db_restore.find_pg_restore(None, {"PATH": f"/nowhere:{tmp_path}"}) == str(binary)


# -- failures as one line ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        (
            'connection to server at "10.20.1.15", port 5432 failed: '
            'FATAL:  password authentication failed for user "app"',
            AuthError,
            "PostgreSQL at 10.20.1.15:5432 refused the password for user app: check the password in SRC",
        ),
        (
            "connection to server failed: fe_sendauth: no password supplied",
            AuthError,
            "none was given: set password_env or password_file",
        ),
        (
            'FATAL:  database "shop" does not exist',
            NotFound,
            "has no database shop: create it (createdb) or fix the DSN",
        ),
        ('FATAL:  role "app" does not exist', AuthError, "has no user app"),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.1"', PermissionDenied, "add a pg_hba.conf entry"),
        (
            'connection to server at "10.20.1.15", port 5432 failed: Connection refused\n\tIs the server running?',
            Transient,
            "cannot reach PostgreSQL at 10.20.1.15:5432 (Connection refused): check the host and port",
        ),
        ("failed to resolve host 'db.invalid': [Errno -2] Name or service not known", Transient, "cannot reach"),
        ('connection to server at "10.20.1.15", port 5432 failed: timeout expired', Transient, "(timeout expired"),
        (
            "FATAL:  sorry, too many clients already",
            Permanent,
            "PostgreSQL at 10.20.1.15:5432: sorry, too many clients",
        ),
    ],
)
def test_connection_failures_read_as_one_line_naming_the_fix(text: str, kind: type[Exception], message: str) -> None:
    err = classify(text + " pw-9876", TARGET, "SRC", "pw-9876")
    assert type(err) is kind
    assert message in str(err)
    assert "\n" not in str(err)
    assert "pw-9876" not in str(err)


def test_pg_restore_failures_read_as_one_line() -> None:
    p = db_restore.Params.model_validate(RESTORE)
    corrupt = db_restore.failure(
        1, "pg_restore: error: could not read from input file: end of file\n", TARGET, p, "'db/x' of rp", None
    )
    assert type(corrupt) is Permanent
    assert str(corrupt).startswith("'db/x' of rp is not a usable pg_dump custom-format archive (could not read from")
    assert "it ran in one transaction, so the database is unchanged" in str(corrupt)
    stderr = (
        "pg_restore: while PROCESSING TOC:\npg_restore: from TOC entry 215; 1259 16386 TABLE orders app\n"
        'pg_restore: error: could not execute query: ERROR:  role "shop_owner" does not exist\nCommand was: ...\n'
    )
    other = db_restore.failure(1, stderr, TARGET, p, "'db/x' of rp", None)
    assert str(other).startswith(
        "pg_restore exited 1 restoring 'db/x' of rp into postgresql://app@10.20.1.15:5432/shop: "
        'could not execute query: ERROR:  role "shop_owner" does not exist; it ran in one transaction'
    )
    assert "\n" not in str(other)
    lost = db_restore.failure(
        1, 'pg_restore: error: connection to server at "x" failed: Connection refused', TARGET, p, "o", None
    )
    assert isinstance(lost, Transient)


# -- drills ------------------------------------------------------------------------------------------------


@pytest.fixture
def compute(monkeypatch: pytest.MonkeyPatch) -> FakeCompute:
    fake = FakeCompute("eu-west-1")
    monkeypatch.setattr(aws_ec2, "compute_for", lambda env, region=None: fake)
    return fake


def test_a_drill_restores_only_into_a_database_on_its_own_instance(compute: FakeCompute) -> None:
    drill = DrillScope(RUN, "2026-12-03T12:00:00+00:00")
    compute.add(state="running", private_ip="10.20.1.15", tags={"drctl:tier": "db"})  # production's standby
    compute.add(state="running", private_ip="10.99.0.7", tags={TAG_RUN: "20261101T000000Z-00000000"})  # another drill
    compute.add(state="running", private_ip="10.30.0.9", tags={TAG_RUN: RUN})  # this drill's copy
    for dsn, why in [
        (DSN, "10.20.1.15 is not the private IP of any of its 1 live instance(s) in eu-west-1"),
        ("postgresql://app@10.99.0.7/shop", "10.99.0.7 is not the private IP"),
        ("postgresql://app@db.internal/shop", "db.internal is a host name, not such an instance's private IP"),
    ]:
        p = db_restore.Params.model_validate({**RESTORE, "dsn": dsn})
        with pytest.raises(Permanent) as caught:
            db_restore.run(p, context({"PATH": ""}, drill))
        assert str(caught.value).startswith(
            f"a drill restores only into a database on an instance it launched, and {why}"
        )
        assert "or run as a failover" in str(caught.value)
    # The drill's own instance passes the guard: the run goes on to look for pg_restore (on an empty PATH).
    own = db_restore.Params.model_validate({**RESTORE, "dsn": "postgresql://app@10.30.0.9/shop"})
    with pytest.raises(NotFound, match="pg_restore is not on PATH"):
        db_restore.run(own, context({"PATH": ""}, drill))


# -- db.check values and expectations ------------------------------------------------------------------------


def test_values_are_judged_against_their_expectation() -> None:
    def check(**kw: Any) -> db_check.Check:
        return db_check.Check.model_validate({"name": "c", "sql": "SELECT 1", **kw})

    assert db_check.judge(check(min=10), Decimal("10.0")) == ""
    assert db_check.judge(check(min=10), 9) == "expected >= 10"
    assert db_check.judge(check(min=1), "12") == "is not a number, expected >= 1"
    assert db_check.judge(check(min=1), None) == "is null, expected >= 1"
    assert db_check.judge(check(min=1), True) == "is not a number, expected >= 1"
    assert db_check.judge(check(equals=250), 250) == ""
    assert db_check.judge(check(equals=2.5), Decimal("2.50")) == ""
    assert db_check.judge(check(equals=1), True) == "expected = 1"
    assert db_check.judge(check(equals=True), True) == ""
    assert db_check.judge(check(equals="item-17"), "item-17") == ""
    assert db_check.judge(check(equals="2026-12-03"), datetime(2026, 12, 3).date()) == ""
    assert db_check.judge(check(not_null=True), 0) == ""
    stamp = check(data_timestamp=True)
    assert db_check.judge(stamp, datetime(2026, 12, 3, tzinfo=UTC)) == ""
    assert "without time zone: cast it to timestamptz" in db_check.judge(stamp, datetime(2026, 12, 3))
    assert db_check.judge(stamp, None) == "is null, expected a timestamptz"
    assert db_check.judge(stamp, 5) == "is a int, expected a timestamptz"


def test_data_timestamps_are_utc_with_microseconds() -> None:
    cet = timezone(timedelta(hours=1))
    assert db_check.utc_text(datetime(2026, 12, 3, 16, 4, 5, 123456, tzinfo=cet)) == "2026-12-03T15:04:05.123456+00:00"
    assert db_check.utc_text(datetime(2026, 12, 3, 15, 4, 5, tzinfo=UTC)) == "2026-12-03T15:04:05.000000+00:00"


# -- a fake database for runs without a server ---------------------------------------------------------------


class FakeCursor:
    def __init__(self, value: object) -> None:
        self.description = [("v",)]
        self._rows = [(value,)]

    def fetchmany(self, size: int) -> list[tuple[object]]:
        return self._rows[:size]


class FakeConnection:
    """Answers every query with one value; notes how it was used."""

    def __init__(self, answers: Mapping[str, object], seen: dict[str, Any]) -> None:
        self._answers = answers
        self.seen = seen
        self.read_only = False
        self.broken = False

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.seen.setdefault("read_only", []).append(self.read_only)
        yield

    def execute(self, sql: str, prepare: bool = False) -> FakeCursor:
        self.seen.setdefault("prepared", []).append(prepare)
        return FakeCursor(self._answers[sql])

    def close(self) -> None:
        self.seen["closed"] = True


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``answers`` (sql -> value) and what ``psycopg.connect`` was given, for db.check without a server."""
    state: dict[str, Any] = {"answers": {}}

    def connect(**kwargs: Any) -> FakeConnection:
        state["kwargs"] = kwargs
        return FakeConnection(state["answers"], state)

    monkeypatch.setattr(psycopg, "connect", connect)
    return state


def test_db_check_runs_read_only_prepared_and_reports_values(database: dict[str, Any]) -> None:
    newest = datetime(2026, 12, 3, 16, 4, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    database["answers"] = {"SELECT count(*) FROM orders": 250, "SELECT max(committed_at) FROM orders": newest}
    p = db_check.Params.model_validate(
        {
            "dsn": DSN,
            "password_env": "SHOP_PW",
            "checks": [
                {"name": "orders", "sql": "SELECT count(*) FROM orders;", "min": 100},
                {"name": "newest", "sql": "SELECT max(committed_at) FROM orders", "data_timestamp": True},
            ],
        }
    )
    result = db_check.run(p, context({"SHOP_PW": "pw-5678"}))
    assert result.status == StepStatus.SUCCEEDED, result.message
    assert result.outputs == {
        "values": '{"orders":"250","newest":"2026-12-03T16:04:05.123456+01:00"}',
        "passed": 2,
        "failed": 0,
        "data_timestamp": "2026-12-03T15:04:05.123456+00:00",
    }
    assert database["read_only"] == [True, True]
    assert database["prepared"] == [True, True]
    assert database["closed"]
    kwargs = database["kwargs"]
    assert (kwargs["password"], kwargs["host"], kwargs["dbname"], kwargs["user"]) == (
        "pw-5678",
        "10.20.1.15",
        "shop",
        "app",
    )
    assert kwargs["options"].startswith("-c statement_timeout=")


def test_db_check_failure_lists_each_failing_check(database: dict[str, Any]) -> None:
    database["answers"] = {"SELECT 1": 1, "SELECT count(*) FROM orders": 3, "SELECT item FROM orders": "x"}
    checks = [
        {"name": "one", "sql": "SELECT 1", "equals": 1},
        {"name": "orders", "sql": "SELECT count(*) FROM orders", "min": 100},
        {"name": "item", "sql": "SELECT item FROM orders", "equals": "item-17"},
    ]
    result = db_check.run(db_check.Params.model_validate({"dsn": DSN, "checks": checks}), context())
    assert result.status == StepStatus.FAILED
    assert result.message == (
        "2 of 3 checks failed on postgresql://app@10.20.1.15:5432/shop: "
        "orders = 3 (expected >= 100); item = x (expected = item-17)"
    )
    assert (result.outputs["passed"], result.outputs["failed"]) == (1, 2)


def test_db_check_polls_until_the_checks_pass(database: dict[str, Any]) -> None:
    answers = iter([0, 0, 5])

    class Counting(dict[str, object]):
        def __getitem__(self, key: str) -> object:
            return next(answers)

    database["answers"] = Counting()
    p = db_check.Params.model_validate({"dsn": DSN, "checks": [CHECK], "interval": "10ms", "timeout": "5s"})
    result = db_check.run(p, context())
    assert result.status == StepStatus.SUCCEEDED
    assert result.outputs["values"] == '{"orders":"5"}'


# -- redaction through the executor --------------------------------------------------------------------------


def test_password_env_marks_its_value_secret_whatever_its_name() -> None:
    dumped = {"dsn": DSN, "password_env": "SHOP_PW", "nested": [{"key_env": "VAULT_K"}], "other_env": "X"}
    assert named_secret_envs(dumped) == {"SHOP_PW", "VAULT_K"}


def test_a_failing_db_step_prints_and_journals_no_password(
    tmp_path: Path, database: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    password = "plain-name-password-4321"
    # A check whose value is the password (a careless query): the step fails and its message shows the value.
    database["answers"] = {"SELECT current_setting('app.pw')": password}
    steps = [
        {
            "id": "verify-db",
            "action": "db.check",
            "with": {
                "dsn": DSN,
                "password_env": "SHOP_PW",
                "checks": [{"name": "pw", "sql": "SELECT current_setting('app.pw')", "equals": "other"}],
            },
        }
    ]
    doc = {"apiVersion": "drctl/v1", "kind": "Runbook", "metadata": {"name": "t"}, "spec": {"steps": steps}}
    path = tmp_path / "rb.yaml"
    path.write_text(json.dumps(doc))
    events: list[RunEvent] = []
    printer = PrintObserver()

    def observe(event: RunEvent) -> None:
        events.append(event)
        printer(event)

    journal = RunJournal(tmp_path / "state" / "runs.sqlite")
    env = {"PATH": "/usr/bin:/bin", "SHOP_PW": password}
    outcome = Executor(journal, env=env, observer=observe).run(load_runbook(path), path, RunOptions())
    recorded = journal.steps(outcome.run_id)
    journal.close()

    assert outcome.status == RunStatus.FAILED
    assert database["kwargs"]["password"] == password  # the step did use it
    assert recorded["verify-db"].error == (
        "1 of 1 checks failed on postgresql://app@10.20.1.15:5432/shop: pw = *** (expected = other)"
    )
    captured = capfd.readouterr()
    assert "pw = ***" in captured.out + captured.err
    for blob in (p.read_bytes() for p in (tmp_path / "state").iterdir()):
        assert password.encode() not in blob
    for text in (captured.out, captured.err, *(str(e) for e in events)):
        assert password not in text


# -- http.check JSON assertions ------------------------------------------------------------------------------

DOC = {"orders": {"count": 250, "open": True}, "items": [{"id": "a-1", "price": 2.5}, {"id": "a-2"}], "none": None}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("orders.count", 250),
        ("orders", {"count": 250, "open": True}),
        ("items.0.id", "a-1"),
        ("items.1.id", "a-2"),
        ("items.2.id", http_check.MISSING),
        ("items.x", http_check.MISSING),
        ("items.-1", http_check.MISSING),
        ("orders.count.deeper", http_check.MISSING),
        ("none", None),
        ("missing", http_check.MISSING),
    ],
)
def test_json_paths(path: str, value: object) -> None:
    found = http_check.lookup(DOC, path)
    assert found is value if value is http_check.MISSING else found == value


def assertions(*items: dict[str, Any]) -> tuple[http_check.JsonAssertion, ...]:
    return http_check.Params.model_validate({"url": "https://x", "expect_json": list(items)}).expect_json


def test_json_assertions_survive_the_executors_revalidation() -> None:
    # The executor dumps a step's parameters, fills in references and validates them again, so every optional
    # field comes back present (as null): an assertion must still read as the one expectation it gave.
    given = http_check.Params.model_validate(
        {"url": "http://127.0.0.1:1/x", "expect_json": [{"path": "ok", "equals": True}, {"path": "n", "min": 1}]}
    )
    again = http_check.Params.model_validate(given.model_dump())
    assert [a.expectation() for a in again.expect_json] == ["= true", ">= 1"]
    with pytest.raises(ValidationError, match="give one of equals, min or exists"):
        http_check.Params.model_validate(
            {"url": "http://127.0.0.1:1/x", "expect_json": [{"path": "n", "equals": None}]}
        )


def test_json_assertions_count_passes_and_name_failing_paths() -> None:
    body = json.dumps(DOC)
    ok = assertions(
        {"path": "orders.count", "min": 100},
        {"path": "orders.open", "equals": True},
        {"path": "items.0.price", "equals": 2.5},
        {"path": "items.1", "equals": {"id": "a-2"}},
        {"path": "none", "exists": True},
    )
    assert http_check.assert_json(body, ok) == (5, [])
    bad = assertions(
        {"path": "orders.count", "min": 1000},
        {"path": "orders.open", "equals": 1},
        {"path": "items.5.id", "exists": True},
        {"path": "items.0.id", "min": 1},
    )
    assert http_check.assert_json(body, bad) == (
        0,
        [
            "orders.count is 250, expected >= 1000",
            "orders.open is true, expected = 1",
            "items.5.id is missing from the JSON body",
            'items.0.id is "a-1", expected >= 1',
        ],
    )
    assert http_check.assert_json("<html>", bad[:1]) == (0, ["the body is not JSON, so orders.count cannot be checked"])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"path": "a"}, "gives none: give one of equals, min or exists: true"),
        ({"path": "a", "min": 1, "equals": 2}, "gives equals and min"),
        ({"path": "a..b", "exists": True}, "'a..b' is not a dotted path"),
        ({"path": "a", "exists": False}, "Input should be True"),
        ({"path": "a", "min": "1"}, "valid"),
        ({"path": "a", "exist": True}, "unknown key 'exist' in an expect_json assertion; did you mean 'exists'?"),
    ],
)
def test_json_assertions_refuse_mistakes(item: dict[str, Any], message: str) -> None:
    assert message in refused(http_check.Params, {"url": "https://x", "expect_json": [item]})


class _Json(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"not json" if self.path == "/text" else json.dumps(DOC).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Json)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_check_json_assertions_end_to_end(server: str) -> None:
    good = http_check.Params.model_validate(
        {
            "url": f"{server}/api",
            "expect_json": [{"path": "orders.count", "min": 1}, {"path": "items.0.id", "exists": True}],
        }
    )
    result = http_check.run(good, context())
    assert result.status == StepStatus.SUCCEEDED
    assert (result.outputs["status"], result.outputs["checked"]) == (200, 2)
    bad = http_check.Params.model_validate(
        {
            "url": f"{server}/api",
            "expect_json": [{"path": "orders.count", "min": 1}, {"path": "orders.total", "min": 1}],
        }
    )
    failed = http_check.run(bad, context())
    assert failed.status == StepStatus.FAILED
    assert failed.message == f"GET {server}/api: answered 200, but orders.total is missing from the JSON body"
    assert failed.outputs["checked"] == 1
    text = http_check.Params.model_validate(
        {"url": f"{server}/text", "expect_json": [{"path": "orders.count", "min": 1}]}
    )
    assert "the body is not JSON, so orders.count cannot be checked" in http_check.run(text, context()).message
    plain = http_check.run(http_check.Params.model_validate({"url": f"{server}/api"}), context())
    assert plain.outputs["checked"] == 0
