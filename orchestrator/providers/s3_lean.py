"""A lean signed HTTP client for the S3 calls on a backup's read path: HeadBucket, ListObjectsV2, HeadObject and
GetObject.

boto3 and botocore take about a fifth of a second to import and build an S3 client, and botocore spends about a
millisecond of CPU on each request; a copy that only reads S3 needs neither. These four calls are signed here
(``sigv4``) and sent over urllib3. It is used only with static credentials from the environment (access key,
secret, optional session token): profiles, SSO, roles and instance credentials keep the SDK, which resolves and
refreshes them. Failures are raised as ``S3HttpError``/``S3ConnectError``, which ``providers.s3`` translates the
same way as botocore's errors.
"""

from __future__ import annotations

import threading
import zlib
from base64 import b64decode
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree

import urllib3

from orchestrator.errors import IntegrityError
from orchestrator.providers.lean_http import streamed_body
from orchestrator.providers.sigv4 import EMPTY_SHA256, StaticCredentials, canonical_query, sign, uri_encode

_CONNECT_ERRORS = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)


class S3HttpError(Exception):
    """An S3 error answer: its HTTP status and S3 error code (the status as text when there is no body)."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code


class S3ConnectError(Exception):
    """The endpoint could not be reached (``connect``) or the exchange broke off (not ``connect``)."""

    def __init__(self, kind: str, *, connect: bool) -> None:
        super().__init__(kind)
        self.connect = connect


def static_credentials(env: Mapping[str, str]) -> StaticCredentials | None:
    """Keys set directly in the environment, or None when the SDK's credential chain has to find them."""
    if env.get("AWS_PROFILE"):
        return None
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    return StaticCredentials(key, secret, env.get("AWS_SESSION_TOKEN") or None)


def _dns_safe(bucket: str) -> bool:
    return "." not in bucket and bucket == bucket.lower() and bucket.replace("-", "").isalnum()


class LeanS3Client:
    """Signed reads from one S3 endpoint; thread-safe (urllib3's pool is). ``endpoint`` None means AWS itself."""

    def __init__(
        self,
        endpoint: str | None,
        region: str,
        credentials: StaticCredentials,
        pool: urllib3.PoolManager,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._endpoint = endpoint.rstrip("/") if endpoint else None
        self._region = region
        self._credentials = credentials
        self._pool = pool
        self._clock = clock
        # A bucket in another region answers with its own; later requests go there.
        self._bucket_regions: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- calls ----------------------------------------------------------------------------------------------

    def head_bucket(self, bucket: str) -> None:
        self._request("HEAD", bucket, "", {}, {}).release_conn()

    def list_page(self, bucket: str, prefix: str, token: str | None) -> bytes:
        """One ListObjectsV2 page as its raw XML (keys url-encoded), for ``providers.s3`` to parse."""
        query = {"list-type": "2", "encoding-type": "url", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        resp = self._request("GET", bucket, "", query, {}, preload=True)
        return bytes(resp.data)

    def head_object(self, bucket: str, key: str) -> Mapping[str, str]:
        resp = self._request("HEAD", bucket, key, {}, {"x-amz-checksum-mode": "ENABLED"})
        resp.release_conn()
        return resp.headers

    def get_object(
        self, bucket: str, key: str, byte_range: str | None, name: str
    ) -> tuple[Mapping[str, str], Iterator[bytes], Callable[[], None]]:
        """Headers, the body's chunks and a close hook. A whole object's full CRC32 checksum, where S3 reports
        one, is checked as the body ends (as botocore does): ``IntegrityError`` is raised when the chunks are
        asked past the last one, which every store does before it commits a write."""
        headers = {"x-amz-checksum-mode": "ENABLED"}
        if byte_range:
            headers["range"] = byte_range
        resp = self._request("GET", bucket, key, {}, headers)
        body, close = streamed_body(resp, lambda exc: S3ConnectError(type(exc).__name__, connect=False))
        crc = _full_crc32(resp.headers) if byte_range is None else None
        if crc is None:
            return resp.headers, body, close

        def checked() -> Iterator[bytes]:
            running = 0
            for chunk in body:
                running = zlib.crc32(chunk, running)
                yield chunk
            if running != crc:
                raise IntegrityError(
                    f"{name} does not match the CRC32 checksum S3 reports: it was corrupted in transit"
                )

        return resp.headers, checked(), close

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _location(self, bucket: str, key: str, region: str) -> tuple[str, str, str]:
        """Origin, host and encoded path for a bucket and key in ``region``."""
        encoded_key = uri_encode(key, keep_slash=True)
        if self._endpoint:
            parts = urlsplit(self._endpoint)
            base = parts.path.rstrip("/")
            return f"{parts.scheme}://{parts.netloc}", parts.netloc, f"{base}/{bucket}/{encoded_key}"
        if _dns_safe(bucket):
            host = f"{bucket}.s3.{region}.amazonaws.com"
            return f"https://{host}", host, f"/{encoded_key}"
        host = f"s3.{region}.amazonaws.com"
        return f"https://{host}", host, f"/{bucket}/{encoded_key}"

    def _request(
        self,
        method: str,
        bucket: str,
        key: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        *,
        preload: bool = False,
        redirected: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        with self._lock:
            region = self._bucket_regions.get(bucket, self._region)
        origin, host, path = self._location(bucket, key, region)
        signed = sign(
            method,
            host,
            path,
            query,
            headers,
            credentials=self._credentials,
            region=region,
            service="s3",
            now=self._clock(),
            payload_sha256=EMPTY_SHA256,
        )
        # The query as it was signed (sorted): any order is valid on the wire.
        url = origin + path + (f"?{canonical_query(query)}" if query else "")
        try:
            resp = self._pool.request(
                method, url, headers=signed, retries=False, redirect=False, preload_content=preload
            )
        except _CONNECT_ERRORS as exc:
            raise S3ConnectError(type(exc).__name__, connect=True) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise S3ConnectError(type(exc).__name__, connect=False) from exc
        if resp.status < 300:
            return resp
        body = resp.data if method != "HEAD" else b""
        resp.release_conn()
        moved = resp.headers.get("x-amz-bucket-region")
        if moved and moved != region and not redirected:
            # The bucket lives in another region (301, or 400 with a region hint): sign for it and ask again.
            with self._lock:
                self._bucket_regions[bucket] = moved
            return self._request(method, bucket, key, query, headers, preload=preload, redirected=True)
        raise S3HttpError(resp.status, _error_code(body) or str(resp.status))


def _error_code(body: bytes) -> str:
    if not body:
        return ""
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - expat resolves no external entities
    except ElementTree.ParseError:
        return ""
    return root.findtext("Code") or ""


def _full_crc32(headers: Mapping[str, str]) -> int | None:
    """The CRC32 of the whole object, when S3 reports one (a multipart object's composite one is not)."""
    value = headers.get("x-amz-checksum-crc32")
    if not value or headers.get("x-amz-checksum-type", "FULL_OBJECT") != "FULL_OBJECT" or "-" in value:
        return None
    try:
        return int.from_bytes(b64decode(value), "big")
    except ValueError:
        return None
