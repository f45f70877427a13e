"""How the stores read what the SDKs hand back: Azure errors by status and code, S3 listing pages parsed from
their XML, and manifests checked as written or re-encoded."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from orchestrator.backup.manifest import ObjectEntry, RecoveryPoint, Totals, seal, unseal
from orchestrator.errors import AuthError, DrError, IntegrityError, NotFound, Permanent, PermissionDenied, Transient
from orchestrator.providers.azure_blob import container_endpoint, translate_azure_error
from orchestrator.providers.s3 import _parse_listing


def _as_azure_core_raises_it(status: int, code: str) -> HttpResponseError:
    """azure-core's exception for an answer: its class by status, with the service's error code."""
    classes: dict[int, type[HttpResponseError]] = {
        404: ResourceNotFoundError,
        409: ResourceExistsError,
        401: ClientAuthenticationError,
    }
    exc = classes.get(status, HttpResponseError)(f"PUT failed: {status} {code}".strip())
    exc.status_code = status
    exc.error_code = code  # type: ignore[attr-defined]  # set by azure-core at runtime, not declared
    return exc


@pytest.mark.parametrize(
    ("status", "code", "kind", "says"),
    [
        (404, "ContainerNotFound", NotFound, "container of"),
        (404, "BlobNotFound", NotFound, "does not exist"),
        (403, "AuthorizationFailure", AuthError, "credentials"),
        (403, "AuthorizationPermissionMismatch", PermissionDenied, "Storage Blob Data role"),
        (401, "", AuthError, "credentials"),
        (503, "ServerBusy", Transient, "retry later"),
        (429, "", Transient, "retry later"),
        (400, "InvalidBlockList", Permanent, "InvalidBlockList"),
        # The service refusing bytes that do not match the MD5 sent with them is an integrity failure.
        (400, "Md5Mismatch", IntegrityError, "do not have the MD5"),
    ],
)
def test_azure_errors_translate_by_code_then_status(status: int, code: str, kind: type[DrError], says: str) -> None:
    translated = translate_azure_error(_as_azure_core_raises_it(status, code), "az://c/k", "http://endpoint")
    assert type(translated) is kind
    assert says in str(translated)


@pytest.mark.parametrize("error", [ServiceRequestError("refused"), ServiceResponseError("reset mid-body")])
def test_an_azure_request_without_an_answer_is_transient_and_names_the_endpoint(error: Exception) -> None:
    translated = translate_azure_error(error, "az://c/k", "http://endpoint")
    assert type(translated) is Transient
    assert "cannot reach the Azure Blob endpoint http://endpoint" in str(translated)


def test_an_azure_identity_without_a_token_is_an_auth_error() -> None:
    # azure-identity raises this (no status) when no credential in its chain can give a token.
    translated = translate_azure_error(ClientAuthenticationError("no token"), "az://c/k", "http://endpoint")
    assert type(translated) is AuthError


def test_only_azure_errors_are_translated() -> None:
    with pytest.raises(TypeError, match="not an Azure Blob error"):
        translate_azure_error(ValueError("x"), "az://c/k", "http://endpoint")


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://acct.blob.core.windows.net/c", "https://acct.blob.core.windows.net"),
        ("http://127.0.0.1:10000/devstoreaccount1/c", "http://127.0.0.1:10000/devstoreaccount1"),
        # A SAS whose signature holds "/" once put part of the signature into messages (split at the last "/").
        ("https://acct.blob.core.windows.net/c?sv=2024&sig=ab/cd%2Bef/gh", "https://acct.blob.core.windows.net"),
        ("https://acct.blob.core.windows.net/c/?sig=x/y", "https://acct.blob.core.windows.net"),
    ],
)
def test_the_endpoint_named_in_messages_carries_no_query(url: str, endpoint: str) -> None:
    assert container_endpoint(url) == endpoint


LISTING = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated>
<EncodingType>url</EncodingType><NextContinuationToken>tok+/=</NextContinuationToken>
<Contents><Key>dir/a%20b%26c%E2%82%AC</Key><LastModified>2026-11-26T09:30:00.000Z</LastModified>
<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass>
</Contents><Contents><Key>dir/z</Key><LastModified>2026-11-26T09:31:00.000Z</LastModified><Size>0</Size></Contents>
</ListBucketResult>"""


def test_s3_listing_pages_are_parsed_and_keys_decoded() -> None:
    page = _parse_listing(LISTING)
    assert page.truncated
    assert page.next_token == "tok+/="
    first, second = page.objects
    assert first == {
        "Key": "dir/a b&c€",
        "Size": 12,
        "LastModified": datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
        "ETag": '"9b2cf535f27731c974343645a3985328"',
    }
    assert second["Key"] == "dir/z"
    assert "ETag" not in second


def _point() -> RecoveryPoint:
    now = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    entry = ObjectEntry(
        key="k", size=1, sha256="a" * 64, blob="b" * 64, stored_size=1, source_modified=now, written_by="p"
    )
    return RecoveryPoint(
        id="p",
        started=now,
        created=now,
        mode="full",
        parent=None,
        source="s3://b/",
        drctl_version="0",
        compression=None,
        encryption=None,
        objects=(entry,),
        totals=Totals(objects=1, bytes=1, objects_transferred=1, bytes_transferred=1, objects_unchanged=0),
        paths={"streamed": 1},
    )


@pytest.mark.parametrize("mac_key", [None, b"k" * 32])
def test_manifest_checked_as_written_or_re_encoded(mac_key: bytes | None) -> None:
    raw = seal(_point(), mac_key)
    assert unseal(raw, "p", mac_key) == _point()
    # Re-encoded by another tool, the same content still passes: its canonical body is what the digest covers.
    assert unseal(json.dumps(json.loads(raw), indent=2).encode(), "p", mac_key) == _point()
    with pytest.raises(IntegrityError, match="fails its checksum"):
        unseal(raw.replace(b'"size":1', b'"size":2'), "p", mac_key)
    with pytest.raises(IntegrityError, match="not a valid manifest"):
        unseal(raw[:-3], "p", mac_key)
