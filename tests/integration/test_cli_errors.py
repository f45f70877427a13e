"""Bad input at the provider boundary: each case is one line naming the problem, and a distinct exit code."""

from __future__ import annotations

import os

import pytest

from orchestrator.errors import ExitCode
from orchestrator.providers.azure_settings import connection_endpoint
from tests.support.cli import assert_one_line_error, drctl
from tests.support.lab import AZURITE_WRONG_KEY_CONN, unique_name
from tests.support.ports import free_port


def base_env() -> dict[str, str]:
    """The process environment without any lab or cloud settings, so each test sets exactly what it means."""
    drop = ("AWS_", "AZURE_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.mark.parametrize(
    ("location", "fragment"),
    [
        ("s3://Bad_Bucket/x", "not a valid S3 bucket name"),
        ("az://a--b/x", "not a valid Azure container name"),
        ("ftp://host/path", "unknown scheme 'ftp'"),
        ("s3:/bucket/x", "missing '//' after the scheme"),
        ("s3://bucket/a/../b", "'..' path segment"),
        ("file://relative/path", "must be an absolute path"),
    ],
)
def test_malformed_location(location: str, fragment: str) -> None:
    assert_one_line_error(drctl("ls", location, env=base_env()), ExitCode.INVALID_INPUT, fragment)


def test_missing_bucket(lab_env: dict[str, str]) -> None:
    bucket = unique_name("missing")
    result = drctl("ls", f"s3://{bucket}/", env={**base_env(), **lab_env})
    assert_one_line_error(result, ExitCode.NOT_FOUND, bucket, "does not exist", "create it")


def test_missing_container(lab_env: dict[str, str]) -> None:
    container = unique_name("missing")
    result = drctl("ls", f"az://{container}/", env={**base_env(), **lab_env})
    assert_one_line_error(result, ExitCode.NOT_FOUND, container, "does not exist")


def test_missing_directory(tmp_path: os.PathLike[str]) -> None:
    result = drctl("ls", f"{tmp_path}/nowhere", env=base_env())
    assert_one_line_error(result, ExitCode.NOT_FOUND, "nowhere", "does not exist")


def test_unreachable_s3_endpoint() -> None:
    port = free_port()
    env = {
        **base_env(),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    result = drctl("ls", "s3://some-bucket/", env=env)
    assert_one_line_error(result, ExitCode.UNREACHABLE, f"127.0.0.1:{port}", "cannot reach")


def test_unreachable_azure_endpoint() -> None:
    port = free_port()
    conn = AZURITE_WRONG_KEY_CONN.replace("127.0.0.1:10000", f"127.0.0.1:{port}")
    result = drctl("ls", "az://some-container/", env={**base_env(), "AZURE_STORAGE_CONNECTION_STRING": conn})
    assert_one_line_error(result, ExitCode.UNREACHABLE, f"127.0.0.1:{port}", "cannot reach")


def test_wrong_azure_key(lab_env: dict[str, str]) -> None:
    endpoint = connection_endpoint(lab_env["AZURE_STORAGE_CONNECTION_STRING"])
    conn = AZURITE_WRONG_KEY_CONN.replace("http://127.0.0.1:10000/devstoreaccount1", endpoint)
    result = drctl("ls", "az://some-container/", env={**base_env(), "AZURE_STORAGE_CONNECTION_STRING": conn})
    line = assert_one_line_error(result, ExitCode.AUTH, "rejected the credentials")
    assert "AccountKey" not in line
    assert conn.split("AccountKey=")[1].split(";")[0] not in result.stdout + result.stderr


def test_missing_aws_credentials(lab_env: dict[str, str]) -> None:
    env = {
        **base_env(),
        "AWS_ENDPOINT_URL": lab_env["AWS_ENDPOINT_URL"],
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = drctl("ls", "s3://some-bucket/", env=env)
    assert_one_line_error(result, ExitCode.AUTH, "no usable AWS credentials", "AWS_ACCESS_KEY_ID")


@pytest.mark.parametrize("level", ["error", "debug"])
def test_a_session_token_with_a_newline_is_an_auth_error_that_never_quotes_it(
    lab_env: dict[str, str], s3_bucket: str, level: str
) -> None:
    """A token read from a file verbatim keeps its newline; http.client refuses the header and quotes its repr,
    which must be masked too (found by the secret-canary chaos class)."""
    token = f"canary-token-{unique_name('t')}\n"
    env = {**base_env(), **lab_env, "AWS_SESSION_TOKEN": token, "DRCTL_LOG_LEVEL": level}
    result = drctl("ls", f"s3://{s3_bucket}/", env=env)
    assert result.returncode == ExitCode.AUTH, result.stderr[-2000:]
    assert "line break" in result.stderr.splitlines()[-1], result.stderr[-2000:]
    assert token.strip() not in result.stdout + result.stderr


def test_missing_azure_account() -> None:
    result = drctl("ls", "az://some-container/", env=base_env())
    assert_one_line_error(result, ExitCode.AUTH, "no Azure storage account", "AZURE_STORAGE_CONNECTION_STRING")


def test_malformed_azure_connection_string() -> None:
    env = {**base_env(), "AZURE_STORAGE_CONNECTION_STRING": "this is not a connection string"}
    result = drctl("ls", "az://some-container/", env=env)
    assert_one_line_error(result, ExitCode.INVALID_INPUT, "AZURE_STORAGE_CONNECTION_STRING is malformed")


def test_listing_works_end_to_end(lab_env: dict[str, str], s3_bucket: str) -> None:
    """The same command succeeds once the location is right, so the failures above are not the CLI's fault."""
    result = drctl("ls", f"s3://{s3_bucket}/", env={**base_env(), **lab_env})
    assert result.returncode == 0, result.stderr
    assert "0 objects, 0 bytes" in result.stderr
