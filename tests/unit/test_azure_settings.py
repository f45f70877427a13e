"""Which account and credential the environment names, and endpoints that would leak a secret refused."""

from __future__ import annotations

import base64

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.providers.aws_clients import aws_endpoint
from orchestrator.providers.azure_settings import checked_endpoint, storage_choice
from orchestrator.providers.factory import StoreFactory

KEY = base64.b64encode(b"k" * 64).decode()


def test_a_connection_string_names_everything() -> None:
    conn = f"AccountName=acct;AccountKey={KEY}"
    assert storage_choice({"AZURE_STORAGE_CONNECTION_STRING": conn}).connection_string == conn
    # Another account named explicitly is not the connection string's.
    other = storage_choice({"AZURE_STORAGE_CONNECTION_STRING": conn, "AZURE_STORAGE_ACCOUNT": "other"})
    assert other.connection_string is None
    assert other.account == "other"


def test_a_key_is_preferred_to_a_sas_and_neither_shows_in_a_repr() -> None:
    keyed = storage_choice({"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": KEY, "AZURE_STORAGE_SAS_TOKEN": "s"})
    assert (keyed.key, keyed.sas, keyed.endpoint) == (KEY, None, "https://acct.blob.core.windows.net")
    sas = storage_choice({"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_SAS_TOKEN": "?sv=1&sig=s3cr3t"})
    assert sas.sas == "sv=1&sig=s3cr3t"
    assert KEY not in repr(keyed)
    assert "s3cr3t" not in repr(sas)


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("https://user:pw@acct.blob.core.windows.net", "user name or password"),
        ("https://acct.blob.core.windows.net?sv=1&sig=abc", "must not carry a query"),
        ("acct.blob.core.windows.net", r"http\(s\) URL"),
        ("ftp://acct.blob.core.windows.net", r"http\(s\) URL"),
    ],
)
def test_an_azure_endpoint_that_would_leak_or_cannot_work_is_refused(endpoint: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        checked_endpoint(endpoint)
    env = {"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": KEY, "AZURE_STORAGE_BLOB_ENDPOINT": endpoint}
    with pytest.raises(InvalidInput, match="AZURE_STORAGE_BLOB_ENDPOINT") as raised:
        StoreFactory(env).open("az://vault/")
    assert "pw@" not in str(raised.value)
    assert "sig=abc" not in str(raised.value)


def test_a_connection_strings_blob_endpoint_with_a_password_is_refused() -> None:
    conn = f"BlobEndpoint=http://u:secretpw@127.0.0.1:10000/acct;AccountName=acct;AccountKey={KEY}"
    with pytest.raises(InvalidInput, match="connection string's BlobEndpoint") as raised:
        StoreFactory({"AZURE_STORAGE_CONNECTION_STRING": conn}).open("az://vault/")
    assert "secretpw" not in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "endpoint", "problem"),
    [
        ("AWS_ENDPOINT_URL", "http://u:secretpw@127.0.0.1:4566", "user name, password or query"),
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566?X-Amz-Security-Token=t", "user name, password or query"),
        ("AWS_ENDPOINT_URL", "127.0.0.1:4566", r"http\(s\) URL"),
    ],
)
def test_an_aws_endpoint_that_would_leak_or_cannot_work_is_refused(variable: str, endpoint: str, problem: str) -> None:
    """botocore would send a userinfo password as part of the Host header; it is refused before any request."""
    env = {variable: endpoint, "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    with pytest.raises(InvalidInput, match=problem) as raised:
        aws_endpoint(env, "s3")
    assert variable in str(raised.value)
    with pytest.raises(InvalidInput):
        StoreFactory(env).open("s3://bucket/")
    assert "secretpw" not in str(raised.value)


def test_an_empty_account_variable_is_unset() -> None:
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/x;"
    )
    choice = storage_choice({"AZURE_STORAGE_CONNECTION_STRING": conn, "AZURE_STORAGE_ACCOUNT": ""})
    assert choice.connection_string == conn
