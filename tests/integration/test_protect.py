"""``drctl protect`` on the lab: S3 events through SQS into points, listing an Azure source, kill -9 mid-point
then a restart, the lag metric and its alerts while the vault is unreachable, and ``--plan``.

Every wait is a condition polled with a deadline: the service's own log lines, its ``/metrics``, or the set.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from orchestrator.backup.crypto import KeySource
from orchestrator.backup.sets import BackupSet, open_set
from orchestrator.errors import ExitCode
from orchestrator.providers.azure_settings import connection_endpoint
from orchestrator.providers.factory import StoreFactory
from tests.chaos.infra_trials import with_blob_endpoint
from tests.support.cli import assert_one_line_error, drctl, process_env
from tests.support.fault_proxy import FaultProxy
from tests.support.lab import temporary_container
from tests.support.protect import ProtectProcess

pytestmark = pytest.mark.lab


@pytest.fixture
def env(lab_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**process_env(lab_env), "DRCTL_STATE_DIR": str(tmp_path / "state")}


@pytest.fixture
def vault(lab_factory: StoreFactory) -> Iterator[str]:
    with temporary_container(lab_factory.blob_service()) as name:
        yield name


@pytest.fixture
def protect() -> Iterator[list[ProtectProcess]]:
    started: list[ProtectProcess] = []
    yield started
    for process in started:
        process.close()


def the_set(env: dict[str, str], url: str) -> BackupSet:
    return open_set(StoreFactory(env).open(url), KeySource(), env)


def newest_keys(env: dict[str, str], url: str) -> dict[str, int]:
    bset = the_set(env, url)
    point = bset.load_point(bset.point_ids()[-1])
    return {e.key: e.size for e in point.objects}


def s3_objects(factory: StoreFactory, bucket: str, prefix: str) -> dict[str, int]:
    pages = factory.s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"].removeprefix(prefix): o["Size"] for page in pages for o in page.get("Contents", [])}


def test_s3_events_through_sqs_become_points(
    env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, vault: str, protect: list[ProtectProcess]
) -> None:
    s3, queue = lab_factory.s3_client(), f"t-q-{uuid.uuid4().hex[:12]}"
    for i in range(3):
        s3.put_object(Bucket=s3_bucket, Key=f"data/{i}.txt", Body=f"first {i}".encode())
    set_url = f"az://{vault}/set/"
    args = [f"s3://{s3_bucket}/data/", set_url, "--rpo", "15s", "--sqs-queue", queue, "--setup-notifications"]
    service = ProtectProcess(args, env)
    protect.append(service)
    try:
        service.wait_for("the first point", lambda: service.sealed() >= 1)
        s3.put_object(Bucket=s3_bucket, Key="data/new.txt", Body=b"a new object")
        s3.delete_object(Bucket=s3_bucket, Key="data/0.txt")
        s3.put_object(Bucket=s3_bucket, Key="other/ignored.txt", Body=b"outside the prefix")
        # The next full listing is 10 minutes away: a second point this soon came from the events.
        service.wait_for("a point taken on the events", lambda: service.sealed() >= 2, timeout=60)
        assert newest_keys(env, set_url) == s3_objects(lab_factory, s3_bucket, "data/")
        second = [line for line in service.lines if " sealed (" in line][1]
        assert "(incremental)" in second
        assert " 0 event(s) covered" not in second, second
        metrics = service.metrics()
        assert metrics["drctl_protect_points_total"] == 2
        assert metrics["drctl_protect_rpo_objective_seconds"] == 15
        assert metrics["drctl_protect_lag_seconds"] < 15
        assert metrics["drctl_protect_bytes_total"] > 0
        assert service.terminate() == 0
    finally:
        sqs = lab_factory_sqs(env)
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"])


def lab_factory_sqs(env: dict[str, str]) -> Any:
    from orchestrator.providers.aws_clients import aws_client

    return aws_client(env, "sqs")


def test_an_azure_source_is_protected_by_listing(
    env: dict[str, str], lab_factory: StoreFactory, vault: str, protect: list[ProtectProcess]
) -> None:
    blobs = lab_factory.blob_service()
    with temporary_container(blobs) as source:
        container = blobs.get_container_client(source)
        for i in range(3):
            container.upload_blob(f"src/{i}.bin", f"blob {i}".encode())
        set_url = f"az://{vault}/set/"
        service = ProtectProcess([f"az://{source}/src/", set_url, "--rpo", "12s"], env)
        protect.append(service)
        service.wait_for("the first point", lambda: service.sealed() >= 1)
        assert any("a listing with a content diff every" in line for line in service.lines)
        container.upload_blob("src/3.bin", b"a fourth blob")
        service.wait_for("the listing's point", lambda: service.sealed() >= 2, timeout=60)
        assert newest_keys(env, set_url) == {f"{i}.bin": len(f"blob {i}") for i in range(3)} | {"3.bin": 13}
        assert service.terminate() == 0


def test_kill_9_mid_point_then_a_restart_loses_and_duplicates_nothing(
    env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, vault: str, protect: list[ProtectProcess]
) -> None:
    s3 = lab_factory.s3_client()
    bodies = {f"big/{i:02d}.bin": hashlib.sha256(f"{i}".encode()).digest() * 16384 for i in range(8)}  # 512 KiB
    for key, body in bodies.items():
        s3.put_object(Bucket=s3_bucket, Key=key, Body=body)
    set_url = f"az://{vault}/set/"
    source = f"s3://{s3_bucket}/big/"
    slow = ProtectProcess([source, set_url, "--rpo", "1m", "--transfers", "1", "--bwlimit", "512K"], env)
    protect.append(slow)
    journal = Path(env["DRCTL_STATE_DIR"]) / "journal.sqlite"

    def copied() -> int:
        # The service creates the journal file before its tables, and holds write locks while it copies: a poll that
        # lands in either window reads as "nothing copied yet", and the next poll looks again.
        if not journal.exists():
            return 0
        try:
            db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
            try:
                return int(db.execute("SELECT count(*) FROM copy_objects").fetchone()[0])
            finally:
                db.close()
        except sqlite3.Error:
            return 0

    slow.wait_for("two objects copied", lambda: copied() >= 2, timeout=60)
    slow.kill()
    assert slow.sealed() == 0
    assert the_set(env, set_url).point_ids() == []  # nothing claims to be complete
    again = ProtectProcess([source, set_url, "--rpo", "1m"], env)
    protect.append(again)
    again.wait_for("the resumed point", lambda: again.sealed() >= 1, timeout=60)
    line = next(line for line in again.lines if " sealed (" in line)
    assert "resumed from an unfinished point" in line
    assert " (0 resumed" not in line, line
    assert again.terminate() == 0
    assert newest_keys(env, set_url) == {k.removeprefix("big/"): len(v) for k, v in bodies.items()}
    verified = drctl("backup", "verify", set_url, "--deep", "--json", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr


class _Webhook(http.server.BaseHTTPRequestHandler):
    received: list[str]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append(json.loads(self.rfile.read(length))["text"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []
    handler = type("Hook", (_Webhook,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_the_lag_passes_the_objective_while_the_vault_is_unreachable_and_recovers_after(
    env: dict[str, str],
    lab_env: dict[str, str],
    lab_factory: StoreFactory,
    s3_bucket: str,
    vault: str,
    protect: list[ProtectProcess],
    webhook: tuple[str, list[str]],
) -> None:
    hook, alerts = webhook
    s3 = lab_factory.s3_client()
    s3.put_object(Bucket=s3_bucket, Key="app/a.txt", Body=b"a")
    blob_endpoint = connection_endpoint(lab_env["AZURE_STORAGE_CONNECTION_STRING"])
    proxy = FaultProxy(blob_endpoint, dialect="azure")
    try:
        account_path = urlsplit(blob_endpoint).path
        conn = with_blob_endpoint(lab_env["AZURE_STORAGE_CONNECTION_STRING"], proxy.url + account_path)
        proxied = {**env, "AZURE_STORAGE_CONNECTION_STRING": conn}
        args = [f"s3://{s3_bucket}/app/", f"az://{vault}/set/", "--rpo", "10s", "--alert-webhook", hook]
        service = ProtectProcess(args, proxied)
        protect.append(service)
        service.wait_for("the first point", lambda: service.sealed() >= 1)
        service.wait_for("a lag within the objective", lambda: service.metrics()["drctl_protect_lag_seconds"] < 10)
        proxy.outage(16)
        s3.put_object(Bucket=s3_bucket, Key="app/b.txt", Body=b"b")
        service.wait_for(
            "the lag past the objective", lambda: service.metrics()["drctl_protect_lag_seconds"] > 10, timeout=40
        )
        service.wait_for("the alert", lambda: any(a.startswith("ALERT") for a in alerts), timeout=10)
        service.wait_for(
            "the lag back within the objective",
            lambda: service.metrics()["drctl_protect_lag_seconds"] < 10,
            timeout=90,
        )
        service.wait_for("the resolve", lambda: any(a.startswith("RESOLVED") for a in alerts), timeout=10)
        assert service.metrics().get("drctl_protect_errors_total", 0) > 0 or any(
            "failed" in line for line in service.lines
        )
        assert "b.txt" in newest_keys(env, f"az://{vault}/set/")
        assert service.terminate() == 0
    finally:
        proxy.close()


def test_plan_refuses_an_objective_it_cannot_meet(env: dict[str, str], s3_bucket: str, vault: str) -> None:
    source, set_url = f"s3://{s3_bucket}/", f"az://{vault}/set/"
    result = drctl("protect", source, set_url, "--rpo", "5s", "--plan", env=env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "--rpo 5s", "cannot be promised", "--rpo 10s")
    # A feasible objective gets its schedule, and the reasons.
    lab_put = StoreFactory(env).s3_client()
    lab_put.put_object(Bucket=s3_bucket, Key="x", Body=b"x")
    planned = drctl("protect", source, set_url, "--rpo", "5m", "--plan", env=env)
    assert planned.returncode == 0, planned.stderr
    assert "worst expected lag" in planned.stdout
    assert "feasible:" in planned.stdout
