"""Edge inputs that once escaped as tracebacks or echoed a secret; each is now one line and a distinct code."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from orchestrator.backup.crypto import KeySource, LocalKeyWrapper, SetKeys
from orchestrator.durations import parse_duration
from orchestrator.errors import ExitCode, IntegrityError, InvalidInput
from orchestrator.providers.location import parse_location
from orchestrator.providers.s3 import S3Store
from tests.support.cli import assert_one_line_error, drctl


@pytest.mark.parametrize("text", ["~no-such-user-here/x", "file:///tmp/a%00b", "a:" + "b" * 5000])
def test_unusable_paths_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"is not a usable path|missing '//'"):
        parse_location(text)


def test_absurd_durations_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="too long a duration"):
        parse_duration("99999999999d")


def test_a_corrupt_wrapped_key_is_an_integrity_error() -> None:
    wrapper = LocalKeyWrapper(os.urandom(32))
    for wrapped in ("abc", "AAAA", base64.b64encode(b"short").decode()):
        with pytest.raises(IntegrityError, match=r"drctl-set\.json is corrupt"):
            wrapper.unwrap(wrapped)


def test_a_key_passed_where_a_variable_name_belongs_is_refused_without_echoing_it() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(InvalidInput) as err:
        KeySource(key_env=key).load({})
    assert key not in str(err.value)
    with pytest.raises(InvalidInput) as err2:
        KeySource(key_file=Path(key.replace("/", "_"))).load({})
    assert key.replace("/", "_") not in str(err2.value)


def test_set_keys_never_show_in_a_repr() -> None:
    keys = SetKeys.derive(os.urandom(32))
    assert keys.blob_key.hex() not in repr(keys)
    assert repr(keys.blob_key) not in repr(keys)


def test_an_endpoint_with_credentials_in_it_is_printed_without_them() -> None:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        endpoint_url="http://user:pa55word@127.0.0.1:4599/?token=t0ps3cret",
    )
    endpoint = S3Store(client, "b").endpoint
    assert endpoint == "http://127.0.0.1:4599/"
    assert "pa55word" not in endpoint
    assert "t0ps3cret" not in endpoint


def test_keygen_into_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    result = drctl("backup", "keygen", str(tmp_path / "no" / "such" / "key"), env=dict(os.environ))
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "cannot create")


def test_a_file_name_that_is_not_utf8_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "fine.txt").write_bytes(b"x")
    with open(os.path.join(os.fsencode(source), b"caf\xe9.txt"), "wb") as f:
        f.write(b"y")
    env = {**os.environ, "DRCTL_STATE_DIR": str(tmp_path / "state")}
    result = drctl("backup", "copy", str(source), str(tmp_path / "set"), "--mode", "full", env=env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "not UTF-8")
    assert not (tmp_path / "set").exists()


def test_a_reader_that_goes_away_is_not_a_traceback(tmp_path: Path) -> None:
    for i in range(3000):
        (tmp_path / f"file-{i:05d}").write_bytes(b"")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "ls", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    _, stderr = proc.communicate(timeout=60)
    assert b"Traceback" not in stderr
    assert proc.returncode == 0


def test_a_yaml_value_that_is_not_its_type_is_a_located_error(tmp_path: Path) -> None:
    runbook = tmp_path / "rb.yaml"
    runbook.write_text(
        "apiVersion: drctl/v1\nkind: Runbook\nmetadata: {name: x}\nspec:\n  steps:\n"
        "    - id: say\n      action: notify\n      with: {message: 2024-02-30}\n"
    )
    result = drctl("validate", str(runbook), env=dict(os.environ))
    assert result.returncode == ExitCode.INVALID_INPUT
    assert "Traceback" not in result.stderr + result.stdout
    assert "8:" in result.stderr + result.stdout
    assert "quote it" in result.stderr + result.stdout


@pytest.mark.parametrize("command", ["status", "resume", "report"])
def test_an_unknown_run_id_is_not_found(command: str, tmp_path: Path) -> None:
    env = {**os.environ, "DRCTL_STATE_DIR": str(tmp_path / "state")}
    result = drctl(command, "no-such-run", env=env)
    assert_one_line_error(result, ExitCode.NOT_FOUND, "no-such-run")
