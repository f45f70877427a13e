"""The lean Azure path agrees with the SDK: the same account, endpoint and key from the same settings, the same
order of signed headers, and the same REST version."""

from __future__ import annotations

import base64

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.blob._serialize import _SUPPORTED_API_VERSIONS
from azure.storage.blob._shared.authentication import _storage_header_sort
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.providers.azure_rest import API_VERSION, sort_ms_headers
from orchestrator.providers.azure_settings import blob_settings

KEY = base64.b64encode(b"k" * 64).decode()


def test_the_lean_client_speaks_the_sdks_newest_rest_version() -> None:
    assert _SUPPORTED_API_VERSIONS[-1] == API_VERSION


@pytest.mark.parametrize(
    "conn",
    [
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn",
        f"AccountName=acct;AccountKey={KEY}",
        f"BlobEndpoint=https://acct.blob.core.windows.net/;AccountName=acct;AccountKey={KEY}",
    ],
)
def test_a_connection_string_gives_the_sdks_account_endpoint_and_key(conn: str) -> None:
    settings = blob_settings({"AZURE_STORAGE_CONNECTION_STRING": conn})
    assert settings is not None
    sdk = BlobServiceClient.from_connection_string(conn).get_container_client("c")
    assert settings.account == sdk.account_name
    assert f"{settings.blob_endpoint}/c" == sdk.url
    assert settings.account_key == base64.b64decode(sdk.credential.account_key)


def test_an_account_with_a_key_or_a_sas_is_signed_here_and_an_identity_is_left_to_the_sdk() -> None:
    keyed = blob_settings({"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": KEY})
    assert keyed is not None
    assert keyed.blob_endpoint == "https://acct.blob.core.windows.net"
    sas = blob_settings({"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_SAS_TOKEN": "?sv=1&sig=s"})
    assert sas is not None
    assert sas.sas == "sv=1&sig=s"
    assert blob_settings({"AZURE_STORAGE_ACCOUNT": "acct"}) is None
    assert blob_settings({"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}) is None
    assert blob_settings({"AZURE_STORAGE_CONNECTION_STRING": "AccountName=a;AccountKey=not base64!"}) is None
    # The secrets never show in a repr (logs, tracebacks).
    assert KEY not in repr(keyed)
    assert "sig=s" not in repr(sas)


_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)


@given(st.lists(_NAME, min_size=1, max_size=8, unique=True))
def test_signed_headers_are_ordered_as_the_service_collates_them(suffixes: list[str]) -> None:
    pairs = [(f"x-ms-meta-{s}", "v") for s in suffixes] + [("x-ms-date", "d"), ("x-ms-version", "v")]
    assert sort_ms_headers(pairs) == list(_storage_header_sort(pairs))
