"""Secret canaries (issue #14): fresh random credentials go through drills, failovers, failing runs, DEBUG logging
and faults that force tracebacks, and no form of any of them may appear in what drctl writes.

Each case runs real ``drctl`` commands on an estate of this module's own, with its own state directory
(``DRCTL_STATE_DIR``), temporary directory (``TMPDIR``: ``db.restore`` spools the dump there) and report directory,
and ``DRCTL_LOG_LEVEL=debug`` so the SDKs log every request. Afterwards every canary is searched for, in every form
``tests/chaos/canaries.py`` lists, in: the stdout and stderr of every command, every file (and every SQLite row) of
the state directory, every report (``drctl status`` and ``drctl report`` in JSON, JUnit, HTML and Markdown), any
temporary file left, and every file of the lab's ``.lab/`` written since the case began.

The canaries:

- the AWS secret key and session token: LocalStack does not check signatures (it is not asked to: no
  ``ENFORCE_IAM``), so random values pass and the successful paths carry them. The secret itself never travels
  (only a signature made with it does); the token travels in a header, so it could leak through request logs.
- the backup key-encryption key (``DRCTL_BACKUP_KEY``, which every backup action reads when the step names no
  ``key_env``): each case makes a vault of its own, encrypted under a fresh KEK, so copy, verify, restore and
  ``db.restore`` all use it for real.
- Azure: a container SAS signed for that vault (a real credential, unique to the case) on successful paths; a random
  account key and a forged SAS only on failing ones (Azurite checks both). Where Azurite's published key is used for
  real, it is checked as a secret too, though it is well known.
- the database password: a random one goes through ``db.restore`` and is refused by the drill's PostgreSQL (a
  failing run); on successful paths the lab's own password is used and checked, except in ``.lab/secrets``.

Faults: an action that crashes with the credentials in its exception (``tests/chaos/crashing_cli.py``); endpoints
that refuse connections (botocore and urllib3 log tracebacks at DEBUG); Ctrl-C mid-drill and mid-failover (and the
resume); ``kill -9`` mid-drill and ``drctl drill --cleanup``; a session token with a trailing newline, as one read
from a file verbatim, which makes http.client raise with the header value in its message.

``make test`` runs one passing drill and one failing drill at DEBUG, and the trailing-newline token on the lock path
at both levels (seconds); ``make chaos`` runs every path with every canary, in several rounds of fresh canaries.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import pytest
from azure.core.exceptions import ResourceNotFoundError

from localstack.lab_failover import tier_instances
from orchestrator.errors import ExitCode
from orchestrator.stack_outputs import load_stack_outputs
from tests.chaos.canaries import (
    Leak,
    Secret,
    find_in,
    forged_sas,
    key_canary,
    sas_canary,
    scan_tree,
    token_canary,
    well_known,
)
from tests.chaos.crashing_cli import CRASH_ACTION, CRASH_ECHO
from tests.chaos.figures import full_scale, record, scaled
from tests.support.app_drill import ShopEstate, lab_dir
from tests.support.cli import process_env
from tests.support.estate import REPO, delete_estate, lab_clients, run_seed
from tests.support.lab import container_sas
from tests.support.ports import free_ports

FAULT_CLASS = "secret canaries"
DRILL = str(REPO / "runbooks" / "drill.yaml")
FAILOVER = str(REPO / "runbooks" / "failover-aws-to-azure.yaml")
FORMATS = ("json", "junit", "html", "markdown")
COMMAND_TIMEOUT_S = 900.0
SIGNAL_WAIT_S = 120.0
STATE_WAIT_S = 900.0
"""How long a signal case waits for its moment: about 30s on a quiet lab, but a busy shared one (LocalStack
answering the tiers' EC2 look-ups in seconds) can take many minutes to reach a failover's tier 6."""
LAB_PRUNE = ("localstack-venv", "postgres-venv")
"""Installed software under ``.lab/``: nothing a run does writes there (the ``since`` filter would skip it anyway;
pruning only saves walking half a gigabyte)."""
PLACES = ("stdout", "stderr", "state dir", "reports", "temp files", ".lab/")
MAX_LISTED = 40
HEALTH_TIMEOUT = "6m"
ACCOUNT = "devstoreaccount1"
"""Azurite's one account, the lab's only one."""
SHORT_BUDGET = (
    "full scale only (make chaos): make test's share of this class is one drill and one failing run at DEBUG, and "
    "the malformed-token checks (seconds)"
)


# -- the estate and the lab's own secrets ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def estate(lab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopEstate]:
    """A seeded estate of this module's own: the failover cases stop its production, which no other test may see."""
    prefix = f"tsc-{uuid.uuid4().hex[:8]}"
    lab = lab_clients(lab_env)
    where = tmp_path_factory.mktemp("canary-estate")
    env = process_env(lab_env)
    try:
        seeded = run_seed(where / "stack-outputs.json", prefix, env)
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        outputs = load_stack_outputs(where / "stack-outputs.json")
        # Production stops once its first dump is in S3 (the seeder waits for it): a full copy racing its 10-second
        # overwrite of that dump fails, rightly, with an integrity error, which would make a case fail at random. A
        # failover finds production stopped anyway, and a drill copies the standbys.
        stop_and_wait(lab.ec2_primary, tier_instances(lab.ec2_primary, "production", prefix))
        yield ShopEstate(prefix, where / "stack-outputs.json", outputs, lab, env)
    finally:
        delete_estate(lab, prefix)


STOP_WAIT_S = 60.0


def stop_and_wait(ec2: Any, instances: Mapping[str, Mapping[str, Any]]) -> None:
    """Stop ``instances`` and wait (bounded) until EC2 says so and their database port refuses: the runner has
    killed their programs, so a failover's health check must wait for a real boot."""
    ids = [str(i["InstanceId"]) for i in instances.values()]
    ec2.stop_instances(InstanceIds=ids)
    db = str(instances["db"]["PrivateIpAddress"]) if "db" in instances else None
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        states = {
            i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]
        }
        if states == {"stopped"} and (db is None or not port_open(db, 5432)):
            return
        time.sleep(0.2)
    pytest.fail(f"instances {ids} did not stop within {STOP_WAIT_S:.0f}s")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class LabSecrets:
    """The lab's real Azure account key and database password (successful paths use them), and the endpoint."""

    azurite_key: Secret
    db_password: Secret
    blob_endpoint: str


def connection_fields(conn: str) -> dict[str, str]:
    return {k: v for k, _, v in (part.partition("=") for part in conn.split(";") if part)}


@pytest.fixture(scope="module")
def lab_secrets(lab_env: dict[str, str]) -> LabSecrets:
    fields = connection_fields(lab_env["AZURE_STORAGE_CONNECTION_STRING"])
    password = lab_env.get("DRCTL_LAB_DB_PASSWORD")
    assert password, "the lab exports no DRCTL_LAB_DB_PASSWORD: is its PostgreSQL installed (make setup)?"
    return LabSecrets(
        azurite_key=well_known("Azurite account key (well-known)", fields["AccountKey"]),
        db_password=well_known("lab database password (well-known)", password, home=lab_dir() / "secrets"),
        blob_endpoint=fields["BlobEndpoint"],
    )


# -- one case: its directories, its commands and their output -----------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass
class Case:
    """One path through drctl with its canaries: the commands it ran (all output kept for the scan) and the
    directories drctl wrote into."""

    name: str
    root: Path
    secrets: list[Secret]
    started: float = field(default_factory=time.time)
    # Not in the repr: a failing test prints its arguments, and these are megabytes of DEBUG output.
    streams: list[tuple[str, str, bytes]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        for d in (self.state, self.reports, self.tmp):
            d.mkdir(parents=True)

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def env(self, base: Mapping[str, str], **settings: str | None) -> dict[str, str]:
        """``base`` with this case's directories, DEBUG logging, and ``settings`` (None removes a variable)."""
        env = {**base, "DRCTL_STATE_DIR": str(self.state), "TMPDIR": str(self.tmp), "DRCTL_LOG_LEVEL": "debug"}
        for name, value in settings.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def _keep(self, args: Sequence[str], stdout: bytes, stderr: bytes) -> Result:
        label = "drctl " + " ".join(args[:2])
        self.streams += [("stdout", f"stdout of `{label}`", stdout), ("stderr", f"stderr of `{label}`", stderr)]
        return Result(-999, stdout.decode(errors="replace"), stderr.decode(errors="replace"))

    def drctl(
        self, *args: str, env: Mapping[str, str], module: str = "orchestrator.cli", timeout: float = COMMAND_TIMEOUT_S
    ) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=dict(env),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        kept = self._keep(args, done.stdout, done.stderr)
        return Result(done.returncode, kept.stdout, kept.stderr)

    def start(self, *args: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """drctl in the background, its output into files beside (not inside) the scanned directories: at DEBUG it
        writes megabytes, and a pipe nobody reads while the test waits would stop it at its first 64 KiB."""
        with self._out("stdout").open("wb") as out, self._out("stderr").open("wb") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "orchestrator.cli", *args], cwd=REPO, env=dict(env), stdout=out, stderr=err
            )

    def finish(self, proc: subprocess.Popen[bytes], *args: str) -> Result:
        """Wait (bounded) for a background drctl; one still running then is killed, and the case fails."""
        try:
            proc.wait(timeout=SIGNAL_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"`drctl {' '.join(args[:2])}` was still running {SIGNAL_WAIT_S:.0f}s after its signal")
        kept = self._keep(args, self._out("stdout").read_bytes(), self._out("stderr").read_bytes())
        return Result(proc.returncode, kept.stdout, kept.stderr)

    def _out(self, stream: str) -> Path:
        return self.root / f"background.{stream}"

    def report_all(self, env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        """``drctl status`` and every report format of every run in this case's journal (written to files, as a
        person keeps them); the JSON reports by run id."""
        docs: dict[str, dict[str, Any]] = {}
        for run_id in journal_runs(self.state):
            # Its exit code is the run's outcome (1 for a failed run); its output must be the JSON status.
            status = self.drctl("status", run_id, "--json", env=env)
            try:
                shown = json.loads(status.stdout)
            except json.JSONDecodeError:
                pytest.fail(f"drctl status {run_id} --json printed no JSON: {tail(status)}")
            assert shown["run_id"] == run_id, tail(status)
            for fmt in FORMATS:
                out = self.reports / f"{run_id}.{fmt}"
                made = self.drctl("report", run_id, "--format", fmt, "--out", str(out), env=env)
                assert made.code == 0, f"drctl report --format {fmt}: {made.stderr[-2000:]}"
            docs[run_id] = json.loads((self.reports / f"{run_id}.json").read_text())
        return docs


def journal_runs(state: Path) -> list[str]:
    """The run ids in the case's journal (a fresh state directory: every run there is the case's), oldest first."""
    return [str(r[0]) for r in query(state, "SELECT run_id FROM runs ORDER BY started")]


def query(state: Path, sql: str, *args: str) -> list[tuple[Any, ...]]:
    """Rows of the run journal, read-only; none while it does not exist yet (the run has not started)."""
    db = state / "runs.sqlite"
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return list(conn.execute(sql, args))
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return []  # created but not yet initialised, or locked for a moment by the writer


def wait_for_journal(proc: subprocess.Popen[bytes], state: Path, what: str, sql: str, *args: str) -> str:
    """Poll the journal (bounded) until ``sql`` returns a row, the readiness a signal needs; fail if the process
    ends first."""
    deadline = time.monotonic() + STATE_WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"drctl ended (exit {proc.returncode}) before {what}")
        rows = query(state, sql, *args)
        if rows:
            return str(rows[0][0])
        time.sleep(0.05)
    pytest.fail(f"no {what} within {STATE_WAIT_S:.0f}s")


# -- scanning and the tally ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one test scanned: canary x place checks, the clean ones, and every leak (which fails the test)."""

    label: str
    runs: int = 0
    fresh: int = 0
    known: set[str] = field(default_factory=set)
    checks: int = 0
    clean: int = 0
    places: set[str] = field(default_factory=set)
    leaks: list[Leak] = field(default_factory=list)

    def scan(self, case: Case) -> None:
        leaks: list[Leak] = []
        present: set[str] = set()
        for place, where, data in case.streams:
            present.add(place)
            leaks += find_in(data, case.secrets, place, where)
        trees = [
            ("state dir", scan_tree(case.state, "state dir", case.secrets, rows=True)),
            ("reports", scan_tree(case.reports, "reports", case.secrets)),
            ("temp files", scan_tree(case.tmp, "temp files", case.secrets)),
            # Only what was written since the case began can hold its canaries; mtime granularity allows 1s.
            (".lab/", scan_tree(lab_dir(), ".lab/", case.secrets, since=case.started - 1, prune=LAB_PRUNE)),
        ]
        for place, tree in trees:
            if tree.files:  # an empty place (no temp file left, say) checks nothing
                present.add(place)
            leaks += tree.leaks
        leaked = {(leak.kind, leak.place) for leak in leaks}
        self.runs += 1
        self.fresh += sum(1 for s in case.secrets if s.fresh)
        self.known |= {s.kind for s in case.secrets if not s.fresh}
        self.checks += len(case.secrets) * len(present)
        self.clean += sum(1 for s in case.secrets for p in present if (s.kind, p) not in leaked)
        self.places |= present
        self.leaks += [
            Leak(
                f"{leak.kind} [case {case.root.name}]",
                leak.form,
                leak.place,
                leak.where,
                leak.line,
                leak.offset,
                leak.excerpt,
            )
            for leak in leaks
        ]

    def __enter__(self) -> Tally:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        # The figures count what was scanned even when a case failed its own expectations; a leak fails the test
        # whatever else happened, naming each one (its kind, form, file and line).
        leaked = {leak.kind for leak in self.leaks}
        places = ", ".join(p for p in PLACES if p in self.places)
        record(
            FAULT_CLASS,
            cases=self.checks,
            survived=self.clean,
            detail=(
                f"{self.label}: {len(leaked)} leaked of {self.fresh} canaries (+ {len(self.known)} well-known lab "
                f"secrets) across {self.runs} runs; places scanned: {places}"
            ),
        )
        if self.leaks:
            listed = "\n  ".join(leak.describe() for leak in self.leaks[:MAX_LISTED])
            more = f"\n  ... and {len(self.leaks) - MAX_LISTED} more" if len(self.leaks) > MAX_LISTED else ""
            pytest.fail(f"{len(leaked)} canaries leaked, in {len(self.leaks)} places:\n  {listed}{more}", pytrace=False)


# -- credentials --------------------------------------------------------------------------------------------------

Settings = dict[str, str | None]
"""Variables a case sets (None: removes) on top of the lab's environment."""


def aws_canaries() -> tuple[list[Secret], Settings]:
    secret, token = token_canary("AWS secret access key"), token_canary("AWS session token", 48)
    return [secret, token], {"AWS_SECRET_ACCESS_KEY": secret.value, "AWS_SESSION_TOKEN": token.value}


def kek_canary() -> tuple[list[Secret], Settings]:
    kek = key_canary("backup key-encryption key", 32)
    return [kek], {"DRCTL_BACKUP_KEY": kek.value}


def db_canary() -> tuple[list[Secret], Settings]:
    password = token_canary("database password", 16)
    return [password], {"DRCTL_LAB_DB_PASSWORD": password.value}


def sas_settings(endpoint: str, sas: str) -> Settings:
    """Azure through a SAS alone: the connection string (which drctl would prefer) removed."""
    return {
        "AZURE_STORAGE_CONNECTION_STRING": None,
        "AZURE_STORAGE_ACCOUNT": ACCOUNT,
        "AZURE_STORAGE_BLOB_ENDPOINT": endpoint,
        "AZURE_STORAGE_SAS_TOKEN": sas,
    }


def azure_creds(kind: str, estate: ShopEstate, lab: LabSecrets, vault: str) -> tuple[list[Secret], Settings]:
    """Azure credentials of ``kind``: ``sas`` (a real SAS signed for ``vault``, unique to the case), ``key`` (the
    lab's connection string, whose well-known key is checked), ``wrong key`` and ``forged sas`` (random, refused)."""
    if kind == "sas":
        sas = container_sas(estate.lab.blobs, vault)
        return [sas_canary("Azure SAS token", sas)], sas_settings(lab.blob_endpoint, sas)
    if kind == "key":
        return [lab.azurite_key], {}
    if kind == "wrong key":
        key = key_canary("Azure storage account key", 64)
        conn = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key.value};"
            f"BlobEndpoint={lab.blob_endpoint};"
        )
        return [key], {"AZURE_STORAGE_CONNECTION_STRING": conn}
    if kind == "forged sas":
        sas = forged_sas()
        return [sas_canary("Azure SAS token (forged)", sas)], sas_settings(lab.blob_endpoint, sas)
    raise ValueError(kind)


@contextlib.contextmanager
def vault_of(estate: ShopEstate) -> Iterator[str]:
    """An empty vault container of the case's own (a KEK is chosen when a set is made, so a fresh KEK needs a
    fresh set), removed afterwards."""
    name = f"{estate.prefix}-k{secrets.token_hex(4)}"
    estate.lab.blobs.create_container(name)
    try:
        yield name
    finally:
        with contextlib.suppress(ResourceNotFoundError):
            estate.lab.blobs.delete_container(name)


@dataclass
class Setup:
    case: Case
    env: dict[str, str]
    vault: str


@contextlib.contextmanager
def canary_case(
    tally: Tally,
    where: Path,
    estate: ShopEstate,
    lab: LabSecrets,
    name: str,
    *,
    azure: str,
    db_password: bool = False,
    encrypted_vault: bool = True,
    settings: Settings | None = None,
) -> Iterator[Setup]:
    """A case with fresh AWS and KEK canaries, Azure credentials of kind ``azure``, a database password canary
    (``db_password``) or the lab's own, and a vault of its own: encrypted under the KEK by a first ``drctl backup
    copy`` (itself one of the case's commands) when ``encrypted_vault``. Whatever the case does, it is scanned at
    the end, and its vault removed."""
    with vault_of(estate) as vault:
        found, env_settings = aws_canaries()
        for more in (kek_canary(), azure_creds(azure, estate, lab, vault), db_canary() if db_password else None):
            if more is not None:
                found += more[0]
                env_settings |= more[1]
        if not db_password:
            found.append(lab.db_password)
        env_settings |= settings or {}
        case = Case(name, where / f"{name}-{uuid.uuid4().hex[:6]}", found)
        env = case.env(estate.base_env, **env_settings)
        try:
            if encrypted_vault:
                made = case.drctl(
                    "backup",
                    "copy",
                    f"s3://{estate.prefix}-app-data/",
                    f"az://{vault}/sets/app/",
                    "--mode",
                    "full",
                    "--encrypt",
                    "--compress",
                    "--quiet",
                    "--json",
                    env=env,
                )
                assert made.code == ExitCode.OK, made.stderr[-3000:]
            yield Setup(case, env, vault)
        finally:
            tally.scan(case)


def runbook_args(estate: ShopEstate, vault: str) -> list[str]:
    return [
        "--stack-outputs",
        str(estate.outputs_path),
        "--json",
        "-p",
        f"source=s3://{estate.prefix}-app-data/",
        "-p",
        f"vault=az://{vault}/",
        # The tiers find each other through LocalStack's EC2, which on a busy shared lab (hundreds of instances)
        # answers in seconds: this class is about leaks, not speed, so the health checks get room.
        "-p",
        f"health_timeout={HEALTH_TIMEOUT}",
    ]


def the_report(docs: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    assert len(docs) == 1, f"expected one run in the case's journal, found {sorted(docs)}"
    return next(iter(docs.values()))


def step(doc: Mapping[str, Any], step_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in doc["steps"] if s["step_id"] == step_id)
    return found


def tail(result: Result) -> str:
    """What to show of a failed command: its last lines of output, not the megabyte of DEBUG before them."""
    return f"exit {result.code}; stdout: {result.stdout[-1500:]!r}; stderr: {result.stderr[-2500:]!r}"


def assert_debug(result: Result) -> None:
    # DEBUG logging really was on: the scan covered the SDKs' request logs, not a quiet run.
    assert "drctl: DEBUG botocore" in result.stderr, tail(result)


# -- drills -------------------------------------------------------------------------------------------------------


def drill_passes(tally: Tally, where: Path, estate: ShopEstate, lab: LabSecrets, azure: str) -> None:
    with canary_case(tally, where, estate, lab, f"drill-passes-{azure.replace(' ', '-')}", azure=azure) as s:
        result = s.case.drctl("drill", DRILL, *runbook_args(estate, s.vault), env=s.env)
        doc = the_report(s.case.report_all(s.env))
        assert result.code == ExitCode.OK, tail(result)
        assert doc["status"] == "succeeded"
        # Every secret was used for real: the encrypted vault verified and restored (the KEK), the database
        # restored and checked (its password), the copies booted (AWS), the vault read (Azure).
        for used in ("verify-vault", "restore-files", "restore-db", "check-db", "start-db"):
            assert step(doc, used)["status"] == "succeeded", step(doc, used)
        assert_debug(result)


def drill_fails_on_purpose(tally: Tally, where: Path, estate: ShopEstate, lab: LabSecrets) -> None:
    with canary_case(tally, where, estate, lab, "drill-injected-failure", azure="sas") as s:
        args = (*runbook_args(estate, s.vault), "-p", "inject_failure=true")
        result = s.case.drctl("drill", DRILL, *args, env=s.env)
        doc = the_report(s.case.report_all(s.env))
        assert result.code == ExitCode.FAILED, tail(result)
        assert step(doc, "restore-db")["status"] == "succeeded"
        assert step(doc, "chaos-app")["status"] == "failed", step(doc, "chaos-app")
        assert_debug(result)


def drill_refuses_the_db_password(tally: Tally, where: Path, estate: ShopEstate, lab: LabSecrets) -> None:
    # The drill's PostgreSQL has the lab's password (the runner gives it to the instance), so the canary is sent
    # through db.restore (psycopg, then pg_restore's PGPASSWORD) and refused: a failing run.
    with canary_case(tally, where, estate, lab, "drill-db-password", azure="key", db_password=True) as s:
        result = s.case.drctl("drill", DRILL, *runbook_args(estate, s.vault), env=s.env)
        doc = the_report(s.case.report_all(s.env))
        assert result.code == ExitCode.FAILED, tail(result)
        restore = step(doc, "restore-db")
        assert restore["status"] == "failed", restore
        assert "refused the password" in str(restore["error"]), restore
        assert_debug(result)


def drill_refuses_azure(tally: Tally, where: Path, estate: ShopEstate, lab: LabSecrets, azure: str) -> None:
    # A wrong account key or a forged SAS reaches Azurite, which refuses it: the vault steps fail. The vault is
    # left empty (nothing could write it with these credentials).
    name = f"drill-{azure.replace(' ', '-')}"
    with canary_case(tally, where, estate, lab, name, azure=azure, encrypted_vault=False) as s:
        result = s.case.drctl("drill", DRILL, *runbook_args(estate, s.vault), env=s.env)
        doc = the_report(s.case.report_all(s.env))
        assert result.code == ExitCode.FAILED, tail(result)
        for refused in ("copy-to-vault", "verify-vault"):
            failed = step(doc, refused)
            assert failed["status"] == "failed", failed
            assert "rejected the credentials" in str(failed["error"]), failed
        assert_debug(result)


@pytest.mark.lab
def test_drills_failing_runs_and_debug_logs_leak_no_canary(
    estate: ShopEstate, lab_secrets: LabSecrets, tmp_path: Path
) -> None:
    with Tally("drills and failing drills at DEBUG") as tally:
        for _ in range(scaled(3, 1)):
            drill_passes(tally, tmp_path, estate, lab_secrets, "sas")
            drill_refuses_the_db_password(tally, tmp_path, estate, lab_secrets)
            if full_scale():
                drill_refuses_azure(tally, tmp_path, estate, lab_secrets, "wrong key")
                drill_passes(tally, tmp_path, estate, lab_secrets, "key")
                drill_fails_on_purpose(tally, tmp_path, estate, lab_secrets)
                drill_refuses_azure(tally, tmp_path, estate, lab_secrets, "forged sas")


# -- faults that force tracebacks ---------------------------------------------------------------------------------

EVERY_SECRET_VARIABLE = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "DRCTL_BACKUP_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "DRCTL_LAB_DB_PASSWORD",
)


def drill_crashes(tally: Tally, where: Path, estate: ShopEstate, lab: LabSecrets, action: str, azure: str) -> None:
    """``action`` raises an exception quoting every credential variable. ``backup.copy`` crashes first thing (every
    canary is in the environment, none used yet, the Azure one a wrong key); ``http.check`` crashes after the
    vault, the KEK, the database password and AWS were all used for real."""
    early = action == "backup.copy"
    crash: Settings = {CRASH_ACTION: action, CRASH_ECHO: ",".join(EVERY_SECRET_VARIABLE)}
    name = f"crash-{action.replace('.', '-')}"
    with canary_case(
        tally, where, estate, lab, name, azure=azure, db_password=early, encrypted_vault=not early, settings=crash
    ) as s:
        args = ("drill", DRILL, *runbook_args(estate, s.vault))
        result = s.case.drctl(*args, env=s.env, module="tests.chaos.crashing_cli")
        doc = the_report(s.case.report_all(s.env))
        assert result.code == ExitCode.FAILED, tail(result)
        crashed = step(doc, "copy-to-vault" if early else "app-healthy")
        # The crash happened, and its message (which quoted every credential) is in the journal, masked.
        assert str(crashed["error"]).startswith("internal error: RuntimeError"), crashed
        assert "AWS_SESSION_TOKEN=***" in str(crashed["error"]), crashed
        if not early:
            assert step(doc, "restore-db")["status"] == "succeeded"
        assert_debug(result)


def drill_cannot_reach(tally: Tally, where: Path, estate: ShopEstate, lab: LabSecrets) -> None:
    """AWS and Azure endpoints that refuse connections: botocore and urllib3 log each failed attempt with its
    traceback at DEBUG, the retries repeat them, and the steps fail."""
    aws_port, azure_port = free_ports(2)
    refused: Settings = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",
        "AZURE_STORAGE_BLOB_ENDPOINT": f"http://127.0.0.1:{azure_port}/{ACCOUNT}",
    }
    with canary_case(
        tally,
        where,
        estate,
        lab,
        "unreachable",
        azure="forged sas",
        db_password=True,
        encrypted_vault=False,
        settings=refused,
    ) as s:
        result = s.case.drctl("drill", DRILL, *runbook_args(estate, s.vault), env=s.env)
        s.case.report_all(s.env)
        assert result.code != ExitCode.OK, tail(result)
        assert "Traceback (most recent call last)" in result.stderr, tail(result)
        assert_debug(result)


def drill_interrupted(tally: Tally, where: Path, estate: ShopEstate, lab: LabSecrets, sig: signal.Signals) -> None:
    """Ctrl-C (SIGINT) or ``kill -9`` once the drill has launched its first copy; after a kill, ``drctl drill
    --cleanup RUN_ID`` removes what it left, with the same credentials."""
    name = "ctrl-c" if sig == signal.SIGINT else "kill-9"
    with canary_case(tally, where, estate, lab, f"drill-{name}", azure="sas") as s:
        args = ("drill", DRILL, *runbook_args(estate, s.vault))
        proc = s.case.start(*args, env=s.env)
        try:
            run_id = wait_for_journal(proc, s.case.state, "an instance in the drill's ledger", DRILL_COPY_RECORDED)
            proc.send_signal(sig)
        except BaseException:
            proc.kill()  # the moment never came: nothing to wait for
            raise
        finally:
            result = s.case.finish(proc, *args)
        if sig == signal.SIGINT:
            assert result.code == ExitCode.INTERRUPTED, tail(result)
        else:
            assert result.code == -signal.SIGKILL, tail(result)
            cleanup = s.case.drctl("drill", "--cleanup", run_id, "--stack-outputs", str(estate.outputs_path), env=s.env)
            assert cleanup.code == ExitCode.OK, tail(cleanup)
        s.case.report_all(s.env)
        assert_debug(result)


DRILL_COPY_RECORDED = "SELECT DISTINCT run_id FROM drill_resources WHERE kind = 'instance'"


@pytest.mark.lab
def test_faults_that_force_tracebacks_leak_no_canary(
    estate: ShopEstate, lab_secrets: LabSecrets, tmp_path: Path
) -> None:
    if not full_scale():
        pytest.skip(SHORT_BUDGET)
    with Tally("crashes, refused endpoints, Ctrl-C and kill -9 at DEBUG") as tally:
        for _ in range(scaled(2, 0)):
            drill_crashes(tally, tmp_path, estate, lab_secrets, "backup.copy", "wrong key")
            drill_crashes(tally, tmp_path, estate, lab_secrets, "http.check", "sas")
            drill_cannot_reach(tally, tmp_path, estate, lab_secrets)
            drill_interrupted(tally, tmp_path, estate, lab_secrets, signal.SIGINT)
            drill_interrupted(tally, tmp_path, estate, lab_secrets, signal.SIGKILL)


# -- failovers ----------------------------------------------------------------------------------------------------


def failover_args(estate: ShopEstate, vault: str) -> list[str]:
    return ["run", FAILOVER, *runbook_args(estate, vault), "--approve", "switch-dns"]


def failover_passes(tally: Tally, where: Path, estate: ShopEstate, lab: LabSecrets) -> None:
    with canary_case(tally, where, estate, lab, "failover-passes", azure="sas") as s:
        result = s.case.drctl(*failover_args(estate, s.vault), env=s.env)
        doc = the_report(s.case.report_all(s.env))
        assert result.code == ExitCode.OK, tail(result)
        assert doc["status"] == "succeeded", doc["status"]
        assert doc["mode"] == "failover", doc["mode"]
        assert step(doc, "restore-db")["status"] == "succeeded"
        assert_debug(result)


def failover_refuses_the_db_password(tally: Tally, where: Path, estate: ShopEstate, lab: LabSecrets) -> None:
    with canary_case(tally, where, estate, lab, "failover-db-password", azure="key", db_password=True) as s:
        result = s.case.drctl(*failover_args(estate, s.vault), env=s.env)
        doc = the_report(s.case.report_all(s.env))
        assert result.code == ExitCode.FAILED, tail(result)
        restore = step(doc, "restore-db")
        assert restore["status"] == "failed", restore
        assert "refused the password" in str(restore["error"]), restore
        assert_debug(result)


def failover_interrupted_then_resumed(tally: Tally, where: Path, estate: ShopEstate, lab: LabSecrets) -> None:
    """Ctrl-C while the failover waits for a person to approve the DNS switch (a point every failover reaches,
    with the standby restored and serving, and which lasts until approved: the signal cannot miss it), then
    ``drctl resume --approve`` with the same credentials finishes it."""
    with canary_case(tally, where, estate, lab, "failover-ctrl-c-resume", azure="sas") as s:
        args = [*failover_args(estate, s.vault)[:-2], "--wait-for-approval", "30m"]
        proc = s.case.start(*args, env=s.env)
        try:
            waiting = "the DNS switch waiting for approval"
            run_id = wait_for_journal(proc, s.case.state, waiting, STEP_RUNNING, "switch-dns")
            proc.send_signal(signal.SIGINT)
        except BaseException:
            proc.kill()  # the moment never came: nothing to wait for
            raise
        finally:
            interrupted = s.case.finish(proc, *args)
        assert interrupted.code == ExitCode.INTERRUPTED, tail(interrupted)
        again = ("resume", run_id, "--approve", "switch-dns", "--stack-outputs", str(estate.outputs_path), "--json")
        resumed = s.case.drctl(*again, env=s.env)
        doc = the_report(s.case.report_all(s.env))
        assert resumed.code == ExitCode.OK, tail(resumed)
        assert doc["status"] == "succeeded", doc["status"]
        assert step(doc, "restore-db")["status"] == "succeeded"
        assert_debug(interrupted)
        assert_debug(resumed)


STEP_RUNNING = "SELECT run_id FROM steps WHERE step_id = ? AND status = 'running'"


@pytest.mark.lab
def test_failovers_interrupted_resumed_and_failing_leak_no_canary(
    estate: ShopEstate, lab_secrets: LabSecrets, tmp_path: Path
) -> None:
    if not full_scale():
        pytest.skip(SHORT_BUDGET)
    with Tally("failovers at DEBUG") as tally:
        for _ in range(scaled(3, 0)):
            failover_interrupted_then_resumed(tally, tmp_path, estate, lab_secrets)
            failover_passes(tally, tmp_path, estate, lab_secrets)
            failover_refuses_the_db_password(tally, tmp_path, estate, lab_secrets)


# -- a malformed session token ------------------------------------------------------------------------------------


def token_with_a_newline() -> tuple[Secret, Settings]:
    """A session token read from a file verbatim, its trailing newline kept: http.client refuses the header and
    says why with the value's ``repr`` in the message, which drctl's mask (of the raw value) does not match."""
    base = token_canary("AWS session token with a trailing newline", 48)
    token = Secret(base.kind, base.value + "\n", core=base.core)
    return token, {"AWS_SESSION_TOKEN": token.value}


def drill_with_a_malformed_token(tally: Tally, where: Path, estate: ShopEstate, *, debug: bool, lock: bool) -> None:
    """With ``--lock-url`` the run lock is taken in S3 before anything else, so the command fails in seconds, at the
    default log level (stderr then holds only what drctl itself prints about the failure) or at DEBUG (botocore logs
    the exception with its traceback); without it, at DEBUG, the drill's own steps fail and retry."""
    secret = token_canary("AWS secret access key")
    token, settings = token_with_a_newline()
    name = f"malformed-token-{'debug' if debug else 'default-level'}{'-lock' if lock else ''}"
    case = Case(name, where / f"{name}-{uuid.uuid4().hex[:6]}", [secret, token])
    env = case.env(
        estate.base_env,
        AWS_SECRET_ACCESS_KEY=secret.value,
        DRCTL_LOG_LEVEL="debug" if debug else None,
        **settings,
    )
    locked = ["--lock-url", f"s3://{estate.prefix}-backups/locks/{case.root.name}/"] if lock else []
    try:
        result = case.drctl("drill", DRILL, *runbook_args(estate, estate.vault), *locked, env=env)
        case.report_all(env)
        assert result.code != ExitCode.OK, tail(result)
        # The header was refused, so the token really went through the failing path (not, say, a lab that is down).
        assert "holds a line break" in result.stderr, tail(result)
    finally:
        tally.scan(case)


@pytest.mark.lab
def test_a_session_token_with_a_trailing_newline_leaks_nowhere(estate: ShopEstate, tmp_path: Path) -> None:
    with Tally("a session token with a trailing newline") as tally:
        for _ in range(scaled(2, 1)):
            drill_with_a_malformed_token(tally, tmp_path, estate, debug=False, lock=True)
            drill_with_a_malformed_token(tally, tmp_path, estate, debug=True, lock=True)
            if full_scale():
                drill_with_a_malformed_token(tally, tmp_path, estate, debug=True, lock=False)


# -- the scan itself ----------------------------------------------------------------------------------------------


def planted(secret: Secret) -> dict[str, bytes]:
    """``secret`` embedded as leaks are: inside a Basic credential, a URL query, a JSON string, an exception's
    ``repr``, a hex dump, and as the key material itself."""
    value = secret.value
    basic = base64.b64encode(f"user:{value}".encode())
    return {
        "raw": f"token is {value} here".encode(),
        "URL-encoded": f"GET /c?sig={quote(value, safe='')}&x=1".encode(),
        "base64 of a Basic credential": b"Authorization: Basic " + basic,
        "JSON-escaped": json.dumps({"error": f"bad {value}/x"}).encode(),
        "Python repr of the value with a newline": repr(f"{value}\n".encode()).encode(),
        "hex": f"dump {value.encode().hex()} end".encode(),
        "half of it": f"masked {secret.core[: len(secret.core) // 2]}*** only".encode(),
        "its last characters": f"sig=***{secret.core[-14:]}".encode(),
        **({"key material": b"\x00" + secret.material + b"\x00"} if secret.material else {}),
    }


def test_the_scan_finds_every_form_of_a_canary_in_files_streams_and_sqlite_rows(tmp_path: Path) -> None:
    # The scan is what makes the lab tests able to fail: each way a value could leak must be found, and a clean
    # place must not be flagged.
    canaries = [token_canary("token"), key_canary("key", 32), sas_canary("sas", forged_sas())]
    for secret in canaries:
        for form, data in planted(secret).items():
            found = find_in(data, [secret], "stdout", "a stream")
            assert [leak.kind for leak in found] == [secret.kind], (secret.kind, form)
        other = [c for c in canaries if c is not secret]
        assert find_in(b"\n".join(planted(secret).values()), other, "stdout", "a stream") == []

    # A file, reported with its line; a long SQLite value stored across overflow pages, found through its rows.
    secret = token_canary("token")
    (tmp_path / "log.txt").write_bytes(b"one\ntwo\nthree " + secret.value.encode() + b"\n")
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    with contextlib.closing(db):
        db.execute("CREATE TABLE events (message TEXT)")
        for offset in range(0, 8192, 997):  # at many positions, so some straddle a page boundary
            db.execute("INSERT INTO events VALUES (?)", ("x" * offset + secret.value + "y" * 9000,))
        db.commit()
    scan = scan_tree(tmp_path, "state dir", [secret], rows=True)
    assert scan.files == 2
    lines = {(Path(leak.where.split(" [")[0]).name, leak.line) for leak in scan.leaks}
    assert ("log.txt", 3) in lines
    assert any(leak.where.endswith("[table events]") for leak in scan.leaks)
    assert scan_tree(tmp_path, "state dir", [token_canary("absent")], rows=True).leaks == []
