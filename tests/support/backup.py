"""Helpers for backup-engine tests: clean environments, seeding sources, snapshots of stores and directories,
and running copies either through the CLI (user-facing behaviour) or in-process (fast setup)."""

from __future__ import annotations

import base64
import io
import json
import secrets
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.storage.blob import (
    AccountSasPermissions,
    ContainerSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_container_sas,
)

from orchestrator.backup.copy import CopyOptions, CopyResult, execute_copy, plan_copy
from orchestrator.backup.crypto import KeySource
from orchestrator.backup.journal import CopyJournal
from orchestrator.backup.manifest import Mode
from orchestrator.backup.sets import BackupSet, NewSetOptions, open_or_create_set
from orchestrator.providers.base import ObjectStore
from orchestrator.providers.factory import StoreFactory
from tests.support.cli import drctl, process_env

MiB = 1024 * 1024


def backup_env(lab_env: Mapping[str, str], state_dir: Path, **extra: str) -> dict[str, str]:
    """The process environment without cloud, lab or drctl settings, plus the lab's and a private state dir."""
    return {**process_env(lab_env), "DRCTL_STATE_DIR": str(state_dir), **extra}


def new_key() -> str:
    """A key-encryption key as users would keep it: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def seed(store: ObjectStore, objects: Mapping[str, bytes]) -> None:
    """Write every object, in parallel (the lab is local; this is setup, not the behaviour under test)."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: store.write(kv[0], io.BytesIO(kv[1])), objects.items()))


def read_object(store: ObjectStore, key: str) -> bytes:
    with store.open_read(key) as reader:
        return reader.read()


def listing(store: ObjectStore, prefix: str = "") -> dict[str, tuple[int, str | None]]:
    """Every object under ``prefix`` with its size and etag: any write, even of the same bytes, shows."""
    return {o.key: (o.size, o.etag) for o in store.list(prefix)}


def read_store(store: ObjectStore, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix`` with its bytes."""
    return {o.key: read_object(store, o.key) for o in store.list(prefix)}


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) by its ``/``-separated relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_json(*args: str, env: Mapping[str, str], timeout: float = 120) -> dict[str, Any]:
    """Run a drctl command that must succeed with ``--json`` output, and parse it."""
    result = drctl(*args, env=env, timeout=timeout)
    assert result.returncode == 0, f"drctl {' '.join(args)} exited {result.returncode}: {result.stderr}"
    assert "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def cli_copy(source: str, dest: str, mode: Mode, env: Mapping[str, str], *extra: str) -> dict[str, Any]:
    return run_json("backup", "copy", source, dest, "--mode", mode, "--json", "--quiet", *extra, env=env)


def cli_restore(set_url: str, target: Path | str, env: Mapping[str, str], *extra: str) -> dict[str, Any]:
    return run_json("backup", "restore", set_url, str(target), "--json", "--quiet", *extra, env=env)


def cli_points(set_url: str, env: Mapping[str, str], *extra: str) -> list[dict[str, Any]]:
    result = drctl("backup", "list", set_url, "--json", *extra, env=env)
    assert result.returncode == 0, result.stderr
    points = json.loads(result.stdout)
    assert isinstance(points, list)
    return points


def open_backup_set(
    factory: StoreFactory,
    set_url: str,
    key_env: str | None = None,
    env: Mapping[str, str] | None = None,
    options: NewSetOptions | None = None,
) -> BackupSet:
    """Open the set at ``set_url``, making it (with ``options``) if there is none yet."""
    bset = open_or_create_set(
        factory.open(set_url), KeySource(key_env=key_env), env or {}, options or NewSetOptions(), datetime.now(UTC)
    )
    assert bset is not None
    return bset


def copy_in_process(
    factory: StoreFactory,
    source_url: str,
    set_url: str,
    mode: Mode,
    state_dir: Path,
    *,
    key_env: str | None = None,
    env: Mapping[str, str] | None = None,
    encrypt: bool = False,
) -> CopyResult:
    """A copy exactly as the CLI runs it, without the process start-up: for setting up a set quickly."""
    source = factory.open(source_url)
    bset = open_backup_set(factory, set_url, key_env, env, NewSetOptions(encryption=encrypt))
    options = CopyOptions(mode=mode)
    plan = plan_copy(source, bset, options)
    journal = CopyJournal(state_dir / "journal.sqlite")
    try:
        return execute_copy(plan, source, bset, options, journal)
    finally:
        journal.close()


# -- Azurite shared access signatures ------------------------------------------------------------------------


def _azurite(lab_env: Mapping[str, str]) -> dict[str, str]:
    fields = dict(p.split("=", 1) for p in lab_env["AZURE_STORAGE_CONNECTION_STRING"].split(";") if p)
    return {"account": fields["AccountName"], "key": fields["AccountKey"], "endpoint": fields["BlobEndpoint"]}


def container_sas(lab_env: Mapping[str, str], container: str, permission: ContainerSasPermissions) -> str:
    lab = _azurite(lab_env)
    return generate_container_sas(
        lab["account"],
        container,
        account_key=lab["key"],
        permission=permission,
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def account_sas(lab_env: Mapping[str, str], permission: AccountSasPermissions) -> str:
    lab = _azurite(lab_env)
    return generate_account_sas(
        lab["account"],
        lab["key"],
        ResourceTypes(container=True, object=True),
        permission,
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def sas_env(lab_env: Mapping[str, str], state_dir: Path, sas: str, **extra: str) -> dict[str, str]:
    """The lab's S3 settings, and Azure by account, endpoint and SAS token only (no connection string)."""
    env = backup_env(lab_env, state_dir, **extra)
    del env["AZURE_STORAGE_CONNECTION_STRING"]
    lab = _azurite(lab_env)
    env.update(
        AZURE_STORAGE_ACCOUNT=lab["account"], AZURE_STORAGE_SAS_TOKEN=sas, AZURE_STORAGE_BLOB_ENDPOINT=lab["endpoint"]
    )
    return env
