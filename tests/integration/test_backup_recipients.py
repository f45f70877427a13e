"""A set sealed to an age recipient, on the lab (S3 on LocalStack): the host that writes backups holds the
set's key and the recipient, and can copy incrementals but cannot read a byte back; a host with the identity
restores and verifies every byte. Run through the CLI, as users would."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import ExitCode
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import backup_env, new_key, read_tree, run_json
from tests.support.cli import assert_one_line_error, drctl


def keygen_identity(path: Path, env: dict[str, str]) -> str:
    made = drctl("backup", "keygen", str(path), "--identity", env=env)
    assert made.returncode == 0, made.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    recipient = made.stdout.rsplit(" ", 1)[1].strip()
    assert recipient.startswith("age1")
    assert "AGE-SECRET-KEY" not in made.stdout, "the identity is written to its file, never printed"
    return recipient


def test_a_writer_with_only_the_recipient_backs_up_but_cannot_read_back(
    lab_env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    files = {"db/dump.bin": os.urandom(1_300_000), "etc/app.conf": b"PLAINTEXT-MARKER-9c2e\n" * 100}
    for name, data in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    env = backup_env(lab_env, tmp_path / "state", SET_KEY=new_key())
    recipient = keygen_identity(tmp_path / "restore-host.age", env)
    set_url = f"s3://{s3_bucket}/vault/"

    full = run_json(
        "backup", "copy", source.as_uri() + "/", set_url, "--mode", "full", "--recipient", recipient,
        "--key-env", "SET_KEY", "--json", env=env,
    )  # fmt: skip
    assert full["objects_transferred"] == 2
    client = lab_factory.s3_client()
    for obj in client.list_objects_v2(Bucket=s3_bucket, Prefix="vault/data/")["Contents"]:
        stored = client.get_object(Bucket=s3_bucket, Key=obj["Key"])["Body"].read()
        assert stored.startswith(b"DRCTLE3\0")
        assert b"PLAINTEXT-MARKER" not in stored

    # The writer's incremental works without any identity: planning reads only the authenticated points.
    (source / "etc/app.conf").write_bytes(b"changed\n")
    incremental = run_json("backup", "copy", source.as_uri() + "/", set_url, "--key-env", "SET_KEY", "--json", env=env)
    assert incremental["objects_transferred"] == 1
    shallow = run_json("backup", "verify", set_url, "--key-env", "SET_KEY", "--json", env=env)
    assert shallow["ok"] is True

    # ...but it cannot read a byte back.
    refused = drctl("backup", "restore", set_url, str(tmp_path / "stolen"), "--key-env", "SET_KEY", env=env)
    assert_one_line_error(refused, ExitCode.AUTH, "encrypted to age recipients", "DRCTL_BACKUP_IDENTITY")
    assert not any((tmp_path / "stolen").rglob("*.*")), "nothing may be written without the identity"
    other = tmp_path / "other.age"
    keygen_identity(other, env)
    wrong = drctl(
        "backup", "restore", set_url, str(tmp_path / "wrong"), "--key-env", "SET_KEY", "--identity-file", str(other),
        env=env,
    )  # fmt: skip
    assert_one_line_error(wrong, ExitCode.AUTH, "no age identity given belongs to this set's recipients", recipient)

    # The restore host, with the identity (here in the environment, as a secret store would give it).
    reader_env = {**env, "DRCTL_BACKUP_IDENTITY": (tmp_path / "restore-host.age").read_text()}
    restored = tmp_path / "restored"
    done = drctl("backup", "restore", set_url, str(restored), "--key-env", "SET_KEY", env=reader_env)
    assert done.returncode == 0, done.stderr
    assert read_tree(restored) == {**files, "etc/app.conf": b"changed\n"}
    deep = run_json("backup", "verify", set_url, "--deep", "--key-env", "SET_KEY", "--json", env=reader_env)
    assert deep["ok"] is True
    assert deep["bytes_read"] > 0


def test_recipients_need_the_sets_key_and_cannot_change_after_the_set_is_made(
    lab_env: dict[str, str], s3_bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.txt").write_bytes(b"a")
    env = backup_env(lab_env, tmp_path / "state", SET_KEY=new_key())
    recipient = keygen_identity(tmp_path / "id.age", env)
    set_url = f"s3://{s3_bucket}/vault/"
    no_key = drctl("backup", "copy", source.as_uri() + "/", set_url, "--recipient", recipient, env=env)
    assert_one_line_error(no_key, ExitCode.INVALID_INPUT, "--recipient needs the set's key too")
    bad = drctl("backup", "copy", source.as_uri() + "/", set_url, "--recipient", "age1xyz", "--key-env", "SET_KEY",
                env=env)  # fmt: skip
    assert_one_line_error(bad, ExitCode.INVALID_INPUT, "'age1xyz' is not an age X25519 recipient")
    made = drctl("backup", "copy", source.as_uri() + "/", set_url, "--recipient", recipient, "--key-env", "SET_KEY",
                 "--mode", "full", env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    other = keygen_identity(tmp_path / "other.age", env)
    changed = drctl("backup", "copy", source.as_uri() + "/", set_url, "--recipient", other, "--key-env", "SET_KEY",
                    env=env)  # fmt: skip
    assert_one_line_error(changed, ExitCode.INVALID_INPUT, "recipients are chosen when a set is made")
