"""SDK errors become the project's tree at the boundary. The codes LocalStack cannot produce (it accepts any
AWS credentials) are checked here with botocore's own Stubber, which speaks the real response shapes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import boto3
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
)
from botocore.stub import Stubber

from orchestrator.errors import AuthError, NotFound, Permanent, PermissionDenied, ProviderError, Transient
from orchestrator.providers.azure_blob import translate_azure_error
from orchestrator.providers.s3 import S3Store
from orchestrator.retry import RetryPolicy


@pytest.fixture
def stubbed() -> Iterator[tuple[S3Store, Stubber]]:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s", endpoint_url="http://x"
    )
    with Stubber(client) as stub:
        yield S3Store(client, "bucket", retry=RetryPolicy(attempts=2, sleep=lambda _: None)), stub


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("InvalidAccessKeyId", 403, AuthError),
        ("SignatureDoesNotMatch", 403, AuthError),
        ("ExpiredToken", 400, AuthError),
        ("AccessDenied", 403, PermissionDenied),
        ("NoSuchBucket", 404, NotFound),
        ("SlowDown", 503, Transient),
        ("InternalError", 500, Transient),
        ("InvalidArgument", 400, Permanent),
    ],
)
def test_s3_error_codes(stubbed: tuple[S3Store, Stubber], code: str, status: int, kind: type[ProviderError]) -> None:
    store, stub = stubbed
    for _ in range(2):  # a transient code is retried once under this policy; others fail at once
        stub.add_client_error("list_objects_v2", service_error_code=code, http_status_code=status)
    with pytest.raises(kind) as err:
        list(store.list())
    assert type(err.value) is kind
    assert "s3://bucket/" in str(err.value)


def test_s3_listing_that_does_not_advance_is_refused(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stub = stubbed
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    page = {
        "Contents": [{"Key": "a", "Size": 1, "LastModified": now, "ETag": '"e"'}],
        "IsTruncated": True,
        "NextContinuationToken": "t",
    }
    stub.add_response("list_objects_v2", page)
    stub.add_response("list_objects_v2", page)
    with pytest.raises(Permanent, match="did not advance past 'a'"):
        list(store.list())


def _http_error(cls: type[HttpResponseError], status: int, code: str) -> HttpResponseError:
    err = cls(message=f"{code} happened")
    err.status_code = status
    err.error_code = code  # type: ignore[attr-defined]  # set by azure-core at runtime, not declared
    return err


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (_http_error(ResourceNotFoundError, 404, "ContainerNotFound"), NotFound),
        (_http_error(ResourceNotFoundError, 404, "BlobNotFound"), NotFound),
        (_http_error(ClientAuthenticationError, 403, "AuthenticationFailed"), AuthError),
        (_http_error(HttpResponseError, 403, "AuthorizationFailure"), AuthError),
        (_http_error(HttpResponseError, 403, "AuthorizationPermissionMismatch"), PermissionDenied),
        (_http_error(HttpResponseError, 503, "ServerBusy"), Transient),
        (_http_error(HttpResponseError, 429, "TooManyRequests"), Transient),
        (_http_error(HttpResponseError, 409, "BlobAlreadyExists"), Permanent),
        # A listing or download cut mid-body (found by the chaos suite's fault proxy): no status, retryable.
        (IncompleteReadError(message="Incomplete download."), Transient),
        (HttpResponseError(message="no answer status"), Transient),
    ],
)
def test_azure_errors(exc: HttpResponseError, kind: type[ProviderError]) -> None:
    translated = translate_azure_error(exc, "az://c/k", "http://endpoint")
    assert type(translated) is kind
    assert "az://c/k" in str(translated)
