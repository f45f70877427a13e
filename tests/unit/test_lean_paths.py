"""The lean request and parsing paths beside the SDKs: same answers, same error classes, same integrity checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)

from orchestrator.backup.manifest import ObjectEntry, RecoveryPoint, Totals, seal, unseal
from orchestrator.errors import AuthError, DrError, IntegrityError, NotFound, Permanent, Transient
from orchestrator.providers.azure_blob import AzureBlobStore, BlobAddress, translate_azure_error
from orchestrator.providers.azure_rest import API_VERSION, BlobConnectError, BlobHttpError, LeanBlobClient
from orchestrator.providers.s3 import _parse_listing
from orchestrator.retry import NO_RETRY


@pytest.mark.parametrize(
    ("status", "code", "kind", "says"),
    [
        (404, "ContainerNotFound", NotFound, "container of"),
        (404, "BlobNotFound", NotFound, "does not exist"),
        (403, "AuthorizationFailure", AuthError, "credentials"),
        (401, "", AuthError, "credentials"),
        (503, "ServerBusy", Transient, "retry later"),
        (400, "InvalidBlockList", Permanent, "InvalidBlockList"),
        # The service refusing bytes that do not match the MD5 sent with them is an integrity failure.
        (400, "Md5Mismatch", IntegrityError, "do not have the MD5"),
    ],
)
def test_lean_azure_errors_translate_like_the_sdks(status: int, code: str, kind: type[DrError], says: str) -> None:
    translated = translate_azure_error(BlobHttpError(status, code, "PUT"), "az://c/k", "http://endpoint")
    assert type(translated) is kind
    assert says in str(translated)


def _as_azure_core_raised_it(status: int, code: str, method: str) -> HttpResponseError:
    """The exception the lean client raised before it had its own: azure-core's, by status, with the code."""
    classes: dict[int, type[HttpResponseError]] = {
        404: ResourceNotFoundError,
        409: ResourceExistsError,
        401: ClientAuthenticationError,
    }
    exc = classes.get(status, HttpResponseError)(f"{method} failed: {status} {code}".strip())
    exc.status_code = status
    exc.error_code = code  # type: ignore[attr-defined]  # set by azure-core at runtime, not declared
    return exc


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 412, 429, 500, 503])
@pytest.mark.parametrize(
    "code",
    [
        "",
        "Md5Mismatch",
        "AuthenticationFailed",
        "AuthorizationFailure",
        "AuthorizationPermissionMismatch",
        "ContainerNotFound",
        "BlobNotFound",
        "ServerBusy",
        "InvalidBlockList",
        "ConditionNotMet",
    ],
)
def test_lean_errors_translate_exactly_as_the_azure_core_ones_they_replaced(status: int, code: str) -> None:
    ours = translate_azure_error(BlobHttpError(status, code, "PUT"), "az://c/k", "http://endpoint")
    before = translate_azure_error(_as_azure_core_raised_it(status, code, "PUT"), "az://c/k", "http://endpoint")
    assert (type(ours), str(ours)) == (type(before), str(before))


class _BrokenPool:
    """A pool whose requests fail in transit, or whose answer breaks off mid-body."""

    def __init__(self, error: urllib3.exceptions.HTTPError, mid_body: bool) -> None:
        self.error, self.mid_body = error, mid_body

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if not self.mid_body:
            raise self.error
        error = self.error

        class Response:
            status = 200
            headers = urllib3.HTTPHeaderDict({"Content-Length": "10"})

            def stream(self, amt: int, decode_content: bool) -> Iterator[bytes]:
                yield b"12345"
                raise error

            def close(self) -> None:
                pass

            def release_conn(self) -> None:
                pass

        return Response()


@pytest.mark.parametrize(
    "error",
    [
        urllib3.exceptions.ProtocolError("Connection aborted."),
        urllib3.exceptions.ReadTimeoutError(None, "/c/k", "read timed out"),  # type: ignore[arg-type]
        urllib3.exceptions.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("mid_body", [False, True], ids=["at-request", "mid-body"])
def test_a_transport_failure_of_the_lean_client_is_a_transient_error_of_the_store(
    error: urllib3.exceptions.HTTPError, mid_body: bool
) -> None:
    pool = _BrokenPool(error, mid_body)
    lean = LeanBlobClient(
        "http://127.0.0.1:1/acct/c",
        "acct",
        API_VERSION,
        account_key=b"k" * 32,
        sas=None,
        pool=pool,  # type: ignore[arg-type]
    )

    def no_sdk() -> Any:
        raise AssertionError("the SDK is not needed for a read")

    store = AzureBlobStore(
        no_sdk, lean=lean, address=BlobAddress("acct", "c", "http://127.0.0.1:1/acct"), retry=NO_RETRY
    )
    with pytest.raises(Transient, match="cannot reach the Azure Blob endpoint"), store.open_read("k") as reader:
        reader.read()


def test_a_lean_request_without_an_answer_is_transient_and_names_the_endpoint() -> None:
    translated = translate_azure_error(BlobConnectError("NewConnectionError"), "az://c/k", "http://endpoint")
    assert type(translated) is Transient
    assert "cannot reach the Azure Blob endpoint http://endpoint" in str(translated)


def test_only_azure_errors_are_translated() -> None:
    with pytest.raises(TypeError, match="not an Azure Blob error"):
        translate_azure_error(ValueError("x"), "az://c/k", "http://endpoint")


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
