"""What the backup commands do when something is wrong: corrupt or missing data, bad keys, bad input, no
permission. Each failure is one line on stderr with a distinct exit code and no traceback, and leaves the set
exactly as it was; a dry run changes nothing; no secret ever appears in output, state or the set."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest
from azure.storage.blob import AccountSasPermissions, ContainerSasPermissions

from orchestrator.backup.layout import CONFIG_KEY, DATA_PREFIX, POINTS_PREFIX, point_key
from orchestrator.errors import ExitCode
from orchestrator.providers.base import ObjectStore
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import (
    account_sas,
    backup_env,
    cli_points,
    container_sas,
    copy_in_process,
    listing,
    new_key,
    open_backup_set,
    read_object,
    read_store,
    sas_env,
    seed,
)
from tests.support.cli import assert_one_line_error, drctl
from tests.support.lab import unique_name

CONTENT = {
    "db/dump.sql": b"INSERT INTO t VALUES (1);\n" * 500,
    "db/wal/000001": os.urandom(12_345),
    "etc/app.yaml": b"replicas: 3\n",
    "blob.bin": os.urandom(66_000),
}


@dataclass(frozen=True)
class ExistingSet:
    """A set with one full recovery point of CONTENT, taken in-process (set-up, not under test)."""

    source_url: str
    set_url: str
    source: ObjectStore
    store: ObjectStore
    point_id: str
    env: dict[str, str]
    state_dir: Path
    bucket: str
    container: str


@pytest.fixture
def existing_set(
    lab_env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, az_container: str, tmp_path: Path
) -> ExistingSet:
    source_url, set_url = f"s3://{s3_bucket}/src/", f"az://{az_container}/set/"
    source = lab_factory.open(source_url)
    seed(source, CONTENT)
    state_dir = tmp_path / "state"
    result = copy_in_process(lab_factory, source_url, set_url, "full", state_dir)
    return ExistingSet(
        source_url,
        set_url,
        source,
        lab_factory.open(set_url),
        result.recovery_point,
        backup_env(lab_env, state_dir),
        state_dir,
        s3_bucket,
        az_container,
    )


def blob_key_of(factory: StoreFactory, es: ExistingSet, key: str) -> str:
    """The data/ key that holds ``key``'s bytes in the set's point."""
    point = open_backup_set(factory, es.set_url).load_point(es.point_id)
    [entry] = [e for e in point.objects if e.key == key]
    return f"{DATA_PREFIX}{entry.blob[:2]}/{entry.blob}"


def overwrite(store: ObjectStore, key: str, data: bytes) -> None:
    store.write(key, io.BytesIO(data))


# -- corrupt and missing data ------------------------------------------------------------------------------------


def test_deep_verify_finds_a_blob_overwritten_with_other_bytes_of_the_same_size(
    existing_set: ExistingSet, lab_factory: StoreFactory
) -> None:
    es = existing_set
    blob = blob_key_of(lab_factory, es, "db/wal/000001")
    original = read_object(es.store, blob)
    overwrite(es.store, blob, bytes(b ^ 0x01 for b in original))

    shallow = drctl("backup", "verify", es.set_url, env=es.env)
    assert shallow.returncode == ExitCode.OK, "a shallow check sees presence and size only, and both are right"

    deep = drctl("backup", "verify", es.set_url, "--deep", env=es.env)
    assert deep.returncode == ExitCode.INTEGRITY, deep.stderr
    assert "Traceback" not in deep.stderr
    [line] = [ln for ln in deep.stdout.splitlines() if ln.startswith("corrupt:")]
    assert "'db/wal/000001'" in line
    assert es.point_id in line
    assert "SHA-256 does not match" in line
    assert deep.stderr.strip().splitlines() == [
        f"verify deep (every byte re-read): 1 points, {len(CONTENT)} objects: FAILED: 0 missing, 1 corrupt"
    ]


def test_shallow_verify_reports_truncated_and_deleted_blobs(
    existing_set: ExistingSet, lab_factory: StoreFactory
) -> None:
    es = existing_set
    truncated = blob_key_of(lab_factory, es, "blob.bin")
    overwrite(es.store, truncated, read_object(es.store, truncated)[:1000])
    es.store.delete(blob_key_of(lab_factory, es, "etc/app.yaml"))

    result = drctl("backup", "verify", es.set_url, "--json", env=es.env)
    assert result.returncode == ExitCode.INTEGRITY, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["objects_checked"] == len(CONTENT)
    [missing] = report["missing"]
    assert "'etc/app.yaml'" in missing
    assert es.point_id in missing
    [corrupt] = report["corrupt"]
    assert "'blob.bin'" in corrupt
    assert f"stored size 1000, recorded {len(CONTENT['blob.bin'])}" in corrupt


def test_restore_of_a_corrupt_blob_fails_and_leaves_no_such_object_in_the_target(
    existing_set: ExistingSet, lab_factory: StoreFactory
) -> None:
    es = existing_set
    blob = blob_key_of(lab_factory, es, "db/dump.sql")
    overwrite(es.store, blob, b"X" * len(read_object(es.store, blob)))
    target_url = f"s3://{es.bucket}/restored/"
    target = lab_factory.open(target_url)

    result = drctl("backup", "restore", es.set_url, target_url, env=es.env)
    assert_one_line_error(result, ExitCode.INTEGRITY, "'db/dump.sql'", es.point_id, "is corrupt")
    restored = read_store(target)
    assert "db/dump.sql" not in restored
    # Whatever else was restored before the failure is complete and right, never a part.
    assert all(CONTENT[k] == v for k, v in restored.items())


def test_restore_refuses_a_point_whose_blob_is_missing_before_writing_anything(
    existing_set: ExistingSet, lab_factory: StoreFactory, tmp_path: Path
) -> None:
    es = existing_set
    es.store.delete(blob_key_of(lab_factory, es, "etc/app.yaml"))
    target = tmp_path / "target"

    result = drctl("backup", "restore", es.set_url, str(target), env=es.env)
    assert_one_line_error(result, ExitCode.INTEGRITY, "'etc/app.yaml'", "chain is broken", "nothing restored")
    # The CLI opens (creates) a local target before the check, so an empty directory may be left; no file is.
    assert not target.exists() or list(target.iterdir()) == []


# -- keys ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def encrypted_set(existing_set: ExistingSet, lab_factory: StoreFactory, az_container: str) -> tuple[str, str]:
    """An encrypted set (beside the plain one) of the same source, and its key."""
    key = new_key()
    set_url = f"az://{az_container}/encrypted/"
    env = {**existing_set.env, "SET_KEY": key}
    copy_in_process(
        lab_factory,
        existing_set.source_url,
        set_url,
        "full",
        existing_set.state_dir,
        key_env="SET_KEY",
        env=env,
        encrypt=True,
    )
    return set_url, key


def test_wrong_key_fails_cleanly_and_writes_nothing(
    existing_set: ExistingSet, encrypted_set: tuple[str, str], lab_factory: StoreFactory, tmp_path: Path
) -> None:
    set_url, key = encrypted_set
    wrong = new_key()
    env = {**existing_set.env, "SET_KEY": wrong}
    target = tmp_path / "target"
    before = listing(lab_factory.open(set_url))

    result = drctl("backup", "restore", set_url, str(target), "--key-env", "SET_KEY", env=env)
    assert_one_line_error(result, ExitCode.AUTH, "wrong key for this backup set")
    assert not target.exists()
    assert key not in result.stderr
    assert wrong not in result.stderr

    # A copy into the set with the wrong key is refused too, before anything is written.
    result = drctl("backup", "copy", existing_set.source_url, set_url, "--key-env", "SET_KEY", env=env)
    assert_one_line_error(result, ExitCode.AUTH, "wrong key for this backup set")
    assert listing(lab_factory.open(set_url)) == before


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        ((), ExitCode.AUTH, ("this backup set is encrypted", "--key-file", "--key-env")),
        (("--key-env", "NO_SUCH_VAR"), ExitCode.AUTH, ("NO_SUCH_VAR is not set",)),
        (("--key-file", "/nonexistent/drctl.key"), ExitCode.INVALID_INPUT, ("cannot read the key file",)),
    ],
    ids=["no-key-given", "unset-variable", "unreadable-file"],
)
def test_missing_key_is_a_clear_one_line_error(
    existing_set: ExistingSet,
    encrypted_set: tuple[str, str],
    tmp_path: Path,
    args: tuple[str, ...],
    code: ExitCode,
    fragments: tuple[str, ...],
) -> None:
    set_url, _ = encrypted_set
    target = tmp_path / "target"
    result = drctl("backup", "restore", set_url, str(target), *args, env=existing_set.env)
    assert_one_line_error(result, code, *fragments)
    assert not target.exists()


def test_encrypt_without_a_key_or_with_a_malformed_one_is_refused_before_anything_is_made(
    existing_set: ExistingSet, lab_factory: StoreFactory, az_container: str
) -> None:
    es = existing_set
    set_url = f"az://{az_container}/new-encrypted/"
    result = drctl("backup", "copy", es.source_url, set_url, "--mode", "full", "--encrypt", env=es.env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "--encrypt needs a key")

    short = base64.b64encode(os.urandom(16)).decode()
    env = {**es.env, "SET_KEY": short}
    result = drctl(
        "backup", "copy", es.source_url, set_url, "--mode", "full", "--encrypt", "--key-env", "SET_KEY", env=env
    )
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "environment variable SET_KEY", "not 32 bytes")
    assert short not in result.stderr
    assert list(lab_factory.open(set_url).list()) == []


# -- bad input -------------------------------------------------------------------------------------------------------


def test_missing_source_is_not_found_and_leaves_the_set_untouched(existing_set: ExistingSet) -> None:
    es = existing_set
    before = listing(es.store)
    missing = unique_name("missing")
    result = drctl("backup", "copy", f"s3://{missing}/", es.set_url, env=es.env)
    assert_one_line_error(result, ExitCode.NOT_FOUND, missing, "does not exist")
    assert listing(es.store) == before


def test_empty_source_is_invalid_input_and_leaves_the_set_untouched(existing_set: ExistingSet) -> None:
    es = existing_set
    before = listing(es.store)
    empty = f"s3://{es.bucket}/nothing-here/"
    result = drctl("backup", "copy", empty, es.set_url, env=es.env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, empty, "has no objects", "nothing to back up")
    result = drctl("backup", "copy", es.source_url, es.set_url, "--include", "*.nomatch", env=es.env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "no objects matching --include/--exclude")
    assert listing(es.store) == before


@pytest.mark.parametrize("sas_kind", ["container-sas", "account-sas"])
@pytest.mark.parametrize("dest", ["existing-set", "new-set"])
def test_destination_without_write_permission_is_exit_8_and_untouched(
    existing_set: ExistingSet, lab_env: dict[str, str], lab_factory: StoreFactory, sas_kind: str, dest: str
) -> None:
    es = existing_set
    if sas_kind == "container-sas":
        sas = container_sas(lab_env, es.container, ContainerSasPermissions(read=True, list=True))
    else:
        sas = account_sas(lab_env, AccountSasPermissions(read=True, list=True))
    env = sas_env(lab_env, es.state_dir, sas)
    seed(es.source, {"db/new-since-the-full": os.urandom(100)})  # so an incremental has something to write
    set_url = es.set_url if dest == "existing-set" else f"az://{es.container}/fresh/"
    whole_container = lab_factory.open(f"az://{es.container}/")
    before = listing(whole_container)

    mode = "incremental" if dest == "existing-set" else "full"
    result = drctl("backup", "copy", es.source_url, set_url, "--mode", mode, env=env)
    line = assert_one_line_error(result, ExitCode.PERMISSION, "access denied", es.container)
    if sas_kind == "account-sas":
        # The SAS may read the set, so it is the first write that is refused: the settings or a blob.
        assert (CONFIG_KEY if dest == "new-set" else f"/set/{DATA_PREFIX}") in line
    assert "sig=" not in line
    assert listing(whole_container) == before


def test_a_read_only_container_sas_can_list_the_set(existing_set: ExistingSet, lab_env: dict[str, str]) -> None:
    es = existing_set
    sas = container_sas(lab_env, es.container, ContainerSasPermissions(read=True, list=True))
    env = sas_env(lab_env, es.state_dir, sas)
    assert [p["id"] for p in cli_points(es.set_url, env)] == [es.point_id]


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda raw: raw.replace(b'"size":12345', b'"size":12346', 1), "fails its checksum"),
        (lambda raw: raw[: len(raw) // 2], "is not a valid manifest"),
    ],
    ids=["size-changed", "truncated"],
)
def test_manifest_edited_by_hand_is_refused_naming_the_point(
    existing_set: ExistingSet, tmp_path: Path, edit: Callable[[bytes], bytes], fragment: str
) -> None:
    es = existing_set
    key = point_key(es.point_id)
    raw = read_object(es.store, key)
    edited = edit(raw)
    assert edited != raw
    overwrite(es.store, key, edited)
    before = listing(es.store)
    target = tmp_path / "target"

    commands: list[tuple[str, ...]] = [
        ("backup", "list", es.set_url),
        ("backup", "verify", es.set_url),
        ("backup", "restore", es.set_url, str(target)),
    ]
    for command in commands:
        result = drctl(*command, env=es.env)
        assert_one_line_error(result, ExitCode.INTEGRITY, f"recovery point {es.point_id}", fragment)
    assert not target.exists()
    assert listing(es.store) == before


def test_unknown_recovery_point_is_not_found(existing_set: ExistingSet, tmp_path: Path) -> None:
    es = existing_set
    target = tmp_path / "target"
    result = drctl("backup", "restore", es.set_url, str(target), "--point", "nope", env=es.env)
    assert_one_line_error(result, ExitCode.NOT_FOUND, "recovery point 'nope' is not in", es.point_id)
    assert not target.exists()


def test_dry_run_prints_the_plan_and_changes_nothing(
    existing_set: ExistingSet, lab_factory: StoreFactory, tmp_path: Path
) -> None:
    es = existing_set
    seed(es.source, {"db/wal/000002": os.urandom(777), "etc/app.yaml": b"replicas: 5\n"})
    before = listing(es.store)
    result = drctl("backup", "copy", es.source_url, es.set_url, "--dry-run", "--json", env=es.env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan == {
        "dry_run": True,
        "mode": "incremental",
        "base_point": es.point_id,
        "objects_to_transfer": 2,
        "bytes_to_transfer": 777 + len(b"replicas: 5\n"),
        "objects_unchanged": len(CONTENT) - 1,
        "objects": [{"key": "db/wal/000002", "size": 777}, {"key": "etc/app.yaml", "size": 12}],
    }
    assert listing(es.store) == before

    fresh_url = f"az://{es.container}/fresh/"
    state_dir = tmp_path / "fresh-state"
    env = {**es.env, "DRCTL_STATE_DIR": str(state_dir)}
    result = drctl("backup", "copy", es.source_url, fresh_url, "--mode", "full", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert sorted(ln.split()[-1] for ln in lines[:-1]) == sorted([*CONTENT, "db/wal/000002"])
    assert lines[-1].startswith(f"dry run (full): would transfer {len(CONTENT) + 1} objects")
    assert lines[-1].endswith("Nothing was changed.")
    assert list(lab_factory.open(fresh_url).list()) == []
    assert not state_dir.exists()


@pytest.fixture
def local_source(tmp_path: Path) -> Path:
    """A local directory with one object: these cases need no lab."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.txt").write_bytes(b"a")
    return source


def test_dry_run_into_a_new_local_directory_prints_the_plan(local_source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "new-set"
    env = backup_env({}, tmp_path / "state")
    result = drctl("backup", "copy", str(local_source), str(dest), "--mode", "full", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "Nothing was changed." in result.stdout
    assert not dest.exists()


def test_missing_source_creates_no_local_destination(tmp_path: Path) -> None:
    dest = tmp_path / "new-set"
    env = backup_env({}, tmp_path / "state")
    result = drctl("backup", "copy", str(tmp_path / "no-such-source"), str(dest), "--mode", "full", env=env)
    assert_one_line_error(result, ExitCode.NOT_FOUND, "no-such-source", "does not exist")
    assert not dest.exists()


def test_bwlimit_nan_is_invalid_input(local_source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "new-set"
    env = backup_env({}, tmp_path / "state")
    result = drctl("backup", "copy", str(local_source), str(dest), "--mode", "full", "--bwlimit", "nan", env=env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "--bwlimit")
    assert not (dest / CONFIG_KEY).exists()


# -- secrets ---------------------------------------------------------------------------------------------------------


def secret_forms(key_b64: str, sas: str) -> list[bytes]:
    """Every spelling in which the key or the SAS signature could leak."""
    raw_key = base64.b64decode(key_b64)
    [sig] = parse_qs(sas)["sig"]
    forms = [key_b64, raw_key.hex(), sas, sig, quote(sig, safe=""), base64.b64decode(sig).hex()]
    return [f.encode() for f in forms] + [raw_key, base64.b64decode(sig)]


def test_no_secret_in_output_state_or_set(
    lab_env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, az_container: str, tmp_path: Path
) -> None:
    key = new_key()
    sas = account_sas(
        lab_env, AccountSasPermissions(read=True, list=True, write=True, create=True, add=True, delete=True)
    )
    state_dir = tmp_path / "state"
    env = sas_env(lab_env, state_dir, sas, DRCTL_BACKUP_KEY=key)  # the default key variable: no --key-env
    source_url, set_url = f"s3://{s3_bucket}/src/", f"az://{az_container}/set/"
    content = {"a.txt": b"alpha\n" * 100, "b/c.bin": os.urandom(20_000)}
    seed(lab_factory.open(source_url), content)

    outputs: list[subprocess.CompletedProcess[str]] = [
        drctl("backup", "copy", source_url, set_url, "--mode", "full", "--encrypt", "--compress", env=env),
        drctl("backup", "restore", set_url, f"s3://{s3_bucket}/restored/", env=env),
        drctl("backup", "verify", set_url, "--deep", "--json", env=env),
        drctl("backup", "list", f"az://{unique_name('missing')}/", env=env),  # a failure message, too
    ]
    assert [r.returncode for r in outputs] == [0, 0, 0, ExitCode.NOT_FOUND], [r.stderr for r in outputs]
    assert read_store(lab_factory.open(f"s3://{s3_bucket}/restored/")) == content

    haystacks: dict[str, bytes] = {}
    for i, r in enumerate(outputs):
        haystacks[f"command {i} output"] = (r.stdout + r.stderr).encode()
    files = [p for p in state_dir.rglob("*") if p.is_file()]
    assert files, "the copy keeps its journal in DRCTL_STATE_DIR"
    haystacks.update({str(p): p.read_bytes() for p in files})
    set_store = lab_factory.open(set_url)
    for info in set_store.list():
        haystacks[f"{set_url}{info.key}"] = (
            read_object(set_store, info.key) + json.dumps(dict(set_store.stat(info.key).metadata)).encode()
        )
    assert any(k.endswith(CONFIG_KEY) for k in haystacks)
    assert any(POINTS_PREFIX in k for k in haystacks)
    for form in secret_forms(key, sas):
        leaks = [name for name, data in haystacks.items() if form in data]
        assert leaks == [], f"a secret appears in {leaks}"
