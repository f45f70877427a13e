"""Amazon S3 (and S3-compatible endpoints such as LocalStack) as an ``ObjectStore``, with server-side copy and
versions. The boto3 client is passed in; its own retries must be off (see ``providers.factory``)."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit
from xml.etree import ElementTree

from orchestrator.errors import (
    AuthError,
    IntegrityError,
    NotFound,
    Permanent,
    PermissionDenied,
    ProviderError,
    Transient,
)
from orchestrator.permissions import Grant, Scope
from orchestrator.providers.aws_clients import malformed_credential
from orchestrator.providers.base import (
    DEFAULT_PART_CONCURRENCY,
    DEFAULT_PART_SIZE,
    HashType,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    Readable,
)
from orchestrator.providers.lazy import LazyClient
from orchestrator.providers.streams import IteratorReader, read_full
from orchestrator.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, CopySourceTypeDef

T = TypeVar("T")

# S3 refuses CopyObject above 5 GiB; larger copies go part by part with UploadPartCopy.
MAX_SINGLE_COPY = 5 * 1024**3
COPY_PART_SIZE = 512 * 1024**2
# SigV4 presigned URLs are refused beyond seven days.
MAX_PRESIGNED_S = 7 * 24 * 3600

IAM_GRANTS = (
    Grant(Scope.BACKUP_BUCKET, ("s3:ListBucket",), ("s3:ListObjectsV2", "s3:HeadBucket")),
    Grant(Scope.BACKUP_BUCKET, ("s3:ListBucketVersions",), ("s3:ListObjectVersions",)),
    # A copy within S3 reads its source and writes its destination: GetObject and PutObject, no action of its own.
    Grant(
        Scope.BACKUP_OBJECT,
        ("s3:GetObject",),
        ("s3:GetObject", "s3:HeadObject", "s3:CopyObject", "s3:UploadPartCopy"),
    ),
    Grant(Scope.BACKUP_OBJECT, ("s3:GetObjectVersion",), ("s3:GetObject",)),
    Grant(
        Scope.BACKUP_OBJECT,
        ("s3:PutObject",),
        (
            "s3:PutObject",
            "s3:CreateMultipartUpload",
            "s3:UploadPart",
            "s3:CompleteMultipartUpload",
            "s3:CopyObject",
            "s3:UploadPartCopy",
        ),
    ),
    Grant(Scope.BACKUP_OBJECT, ("s3:AbortMultipartUpload",), ("s3:AbortMultipartUpload",)),
    Grant(Scope.BACKUP_OBJECT, ("s3:DeleteObject",), ("s3:DeleteObject",)),
    # SSE-KMS: S3 asks KMS for a data key on every write and to decrypt one on every read (and, for a multipart
    # upload, on each part) as the caller, so the caller needs both on the bucket's key.
    Grant(
        Scope.BACKUP_KEY,
        ("kms:GenerateDataKey", "kms:Decrypt"),
        ("s3:PutObject", "s3:CreateMultipartUpload", "s3:UploadPart", "s3:GetObject", "s3:CopyObject"),
    ),
)
"""What the S3 store calls (see ``orchestrator.permissions``)."""
_AUTH_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
_TRANSIENT_CODES = {
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "503",
    "500",
}


def _sdk_errors() -> tuple[type[Exception], ...]:
    # Imported when the first call is made, by which time botocore is loaded anyway.
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def translate_s3_error(exc: Exception, what: str, endpoint: str) -> ProviderError | IntegrityError:
    """Map a botocore error to the project's tree; ``what`` names the bucket or object, never a secret."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        CredentialRetrievalError,
        FlexibleChecksumError,
        NoCredentialsError,
        PartialCredentialsError,
        SSOError,
        TokenRetrievalError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AuthError(
            f"no usable AWS credentials for {what}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    if isinstance(exc, CredentialRetrievalError | SSOError | TokenRetrievalError):
        # A role, SSO session or credential process that could not give credentials: the profile's to fix.
        return AuthError(
            f"the AWS credential source could not give credentials for {what} ({type(exc).__name__}); "
            "check the profile's role or `aws sso login`"
        )
    if isinstance(exc, FlexibleChecksumError):
        return IntegrityError(f"{what} does not match the checksum S3 reports: it was corrupted in transit")
    if isinstance(exc, BotoConnectionError):
        return Transient(f"cannot reach the S3 endpoint {endpoint} for {what}; check AWS_ENDPOINT_URL and the network")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return _translate_code(code, status, what)
    if isinstance(exc, BotoCoreError):
        return malformed_credential(exc, "S3") or Transient(
            f"S3 request for {what} failed ({type(exc).__name__}); retry later"
        )
    raise TypeError(f"not a botocore error: {type(exc).__name__}") from exc


def _translate_code(code: str, status: int, what: str) -> ProviderError:
    if code == "NoSuchBucket":
        return NotFound(f"bucket of {what} does not exist; create it or fix the location")
    if code in ("NoSuchKey", "NoSuchVersion", "404", "NotFound"):
        return NotFound(f"{what} does not exist")
    if code in _AUTH_CODES:
        return AuthError(f"AWS rejected the credentials for {what} ({code}); check the access key and secret")
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return PermissionDenied(f"access denied to {what}; grant the S3 permission to the caller's identity")
    if code in _TRANSIENT_CODES or status >= 500 or status == 429:
        return Transient(f"S3 is unavailable for {what} ({code or status}); retry later")
    return Permanent(f"S3 refused the request for {what} ({code or status})")


@dataclass(frozen=True)
class _ListingPage:
    objects: list[dict[str, Any]]
    truncated: bool
    next_token: str | None


# ListObjectsV2 pages are parsed here rather than by botocore, whose generic parser costs about a tenth of a
# millisecond per key (over a second for ten thousand). botocore still builds, signs and sends the request and
# handles errors; on a successful answer a handler takes the XML body and leaves botocore an empty one to parse.
# The handler is registered on the shared client but acts only inside ``_raw_listing``, in the calling thread.
_listing_context = threading.local()
_RAW_BODY = "DrctlRawListing"
_EMPTY_LISTING = b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult></ListBucketResult>'


def _take_listing_body(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if getattr(_listing_context, "active", False) and response_dict.get("status_code") == 200:
        customized_response_dict[_RAW_BODY] = response_dict["body"]
        response_dict["body"] = _EMPTY_LISTING


def _raw_listing(client: S3Client, kwargs: Mapping[str, Any]) -> _ListingPage:
    client.meta.events.register("before-parse.s3.ListObjectsV2", _take_listing_body, unique_id="drctl-raw-listing")
    _listing_context.active = True
    try:
        resp: Mapping[str, Any] = client.list_objects_v2(**kwargs)
    finally:
        _listing_context.active = False
    if _RAW_BODY not in resp:
        # No HTTP answer went through the handler (a stubbed client in tests): botocore parsed the page itself.
        return _ListingPage(
            list(resp.get("Contents", [])), bool(resp.get("IsTruncated")), resp.get("NextContinuationToken")
        )
    return _parse_listing(resp[_RAW_BODY])


def _parse_listing(body: bytes) -> _ListingPage:
    # The same parser botocore uses on this same answer; expat resolves no external entities.
    root = ElementTree.fromstring(body)  # noqa: S314
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    # botocore asks for url-encoded keys (EncodingType=url) so any key survives XML; they are decoded here.
    encoded = root.findtext(f"{ns}EncodingType") == "url"
    objects: list[dict[str, Any]] = []
    for item in root.iterfind(f"{ns}Contents"):
        key = item.findtext(f"{ns}Key") or ""
        obj: dict[str, Any] = {
            "Key": unquote(key) if encoded else key,
            "Size": int(item.findtext(f"{ns}Size") or 0),
            "LastModified": datetime.fromisoformat(item.findtext(f"{ns}LastModified") or ""),
        }
        etag = item.findtext(f"{ns}ETag")
        if etag:
            obj["ETag"] = etag
        objects.append(obj)
    return _ListingPage(
        objects=objects,
        truncated=root.findtext(f"{ns}IsTruncated") == "true",
        next_token=root.findtext(f"{ns}NextContinuationToken"),
    )


_presigning = threading.local()


class _QuietWhilePresigning(logging.Filter):
    """Drops botocore.auth's debug records of a presigning in progress in this thread: they spell out the
    signature and the canonical query (credential, session token), which together are the URL itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_presigning, "active", False)


_QUIET_WHILE_PRESIGNING = _QuietWhilePresigning()


def _presign_with_sigv4(signature_version: str, **_: Any) -> str | None:
    """The signer for a presigned S3 URL: SigV4 always. Unless a signature version is configured, botocore
    presigns with SigV2 in regions that still accept it, and buckets created since 2020 refuse SigV2."""
    if signature_version.endswith("-query") and not signature_version.startswith(("v4a", "v4-s3express")):
        return "s3v4-query"
    return None


def _etag_md5(etag: str | None, sse: str | None, sse_customer: str | None) -> str | None:
    """The object's MD5 when its ETag is one: a single-part upload stored plainly or with S3-managed keys. A
    multipart ETag has a part count, and under KMS or customer keys the ETag is not an MD5 of the bytes."""
    text = str(etag or "").strip('"').lower()
    if len(text) != 32 or not all(c in "0123456789abcdef" for c in text):
        return None
    if sse not in (None, "AES256") or sse_customer:
        return None
    return text


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _full_object_sha256(obj: Mapping[str, Any]) -> str | None:
    """The hex SHA-256 of the whole object when S3 stores one. A multipart upload's composite checksum (a hash
    of its parts' hashes, ``ChecksumType`` COMPOSITE) is not: endpoints that predate ``ChecksumType`` mark it
    only with a ``-<parts>`` suffix, which base64 decoding would silently drop, giving a wrong hash."""
    value = str(obj.get("ChecksumSHA256") or "")
    if not value or obj.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT" or "-" in value:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return digest.hex() if len(digest) == hashlib.sha256().digest_size else None


class S3Store:
    """Objects under ``s3://bucket/prefix``."""

    def __init__(
        self,
        client: S3Client | Callable[[], S3Client],
        bucket: str,
        prefix: str = "",
        *,
        retry: RetryPolicy | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        part_concurrency: int = DEFAULT_PART_CONCURRENCY,
        copy_part_threshold: int = MAX_SINGLE_COPY,
        etag_md5: bool = True,
    ) -> None:
        """``client`` is a boto3 client or a function making one on first use (a store opened by a command
        that ends before its first request costs no client). ``etag_md5`` False: a single-part object's ETag
        is not taken as its MD5 (for S3-compatible stores whose ETags are something else)."""
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        self._sdk: LazyClient[S3Client] = LazyClient(client)
        self.bucket = bucket
        self.prefix = prefix
        self._retry = retry or RetryPolicy()
        self._part_size = part_size
        self._part_concurrency = part_concurrency
        self._copy_part_threshold = copy_part_threshold
        self._etag_md5 = etag_md5

    # -- plumbing -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def _client(self) -> S3Client:
        return self._sdk.get()

    @property
    def endpoint(self) -> str:
        """The endpoint without any userinfo or query, so it is safe to print."""
        parts = urlsplit(str(self._client.meta.endpoint_url))
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    @property
    def native_hashes(self) -> frozenset[HashType]:
        return frozenset({"sha256"})

    def _name(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self._retry.call_translating(fn, _sdk_errors(), lambda exc: translate_s3_error(exc, what, self.endpoint))

    def _info(self, key: str, obj: Mapping[str, Any]) -> ObjectInfo:
        hashes: dict[HashType, str] = {}
        sha256 = _full_object_sha256(obj)
        if sha256 is not None:
            hashes["sha256"] = sha256
        return ObjectInfo(
            key=key,
            size=int(obj.get("ContentLength", obj.get("Size", 0))),
            modified=obj["LastModified"].astimezone(UTC),
            etag=str(obj["ETag"]).strip('"') if obj.get("ETag") else None,
            version_id=obj.get("VersionId") if obj.get("VersionId") not in (None, "null") else None,
            hashes=hashes,
            metadata=dict(obj.get("Metadata", {})),
        )

    # -- ObjectStore ------------------------------------------------------------------------------------------

    def ensure_root(self) -> None:
        what = f"bucket s3://{self.bucket}"
        try:
            self._call(what, lambda: self._client.head_bucket(Bucket=self.bucket))
        except NotFound as exc:
            raise NotFound(f"{what} does not exist; create it or fix the location") from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = self.prefix + prefix
        token: str | None = None
        last_key: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call(self.url, lambda kw=dict(kwargs): _raw_listing(self._client, kw))  # type: ignore[misc]
            for obj in page.objects:
                # A page that does not move past the previous one would loop forever; some S3-compatible
                # endpoints (LocalStack 4.13 with a space in the continuation key) do exactly that.
                if last_key is not None and obj["Key"] <= last_key:
                    raise Permanent(
                        f"listing {self.url} did not advance past {last_key!r}: the endpoint {self.endpoint} "
                        "paginates incorrectly; list a narrower prefix or fix the endpoint"
                    )
                last_key = obj["Key"]
                yield self._info(obj["Key"][len(self.prefix) :], obj)
            if not page.truncated:
                return
            token = page.next_token

    def stat(self, key: str) -> ObjectInfo:
        resp = self._call(
            self._name(key),
            lambda: self._client.head_object(Bucket=self.bucket, Key=self.prefix + key, ChecksumMode="ENABLED"),
        )
        return self._info(key, resp)

    def presigned_get(self, key: str, expires_s: int, *, version_id: str | None = None) -> str:
        """A URL that lets whoever holds it GET ``key`` (any byte range of it) for ``expires_s`` seconds, as
        this store's identity, with no other credential: for a service that reads the object itself (Azure's
        Put Block From URL). It carries a signature, so it is a secret: hand it only to that service, and
        never put it in a message. ``version_id`` pins one version, so ranges read at different moments of a
        long copy come from the same bytes even if the key is overwritten meanwhile.

        The URL stops working when the credentials that signed it expire (a role session's token), whatever
        ``expires_s`` says. No request is made: a missing object is only found when the URL is used."""
        if not 1 <= expires_s <= MAX_PRESIGNED_S:
            raise ValueError(f"a presigned S3 URL lasts 1 to {MAX_PRESIGNED_S} seconds, not {expires_s}")
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self.prefix + key}
        if version_id is not None:
            params["VersionId"] = version_id
        # Ahead of botocore's own choice of signer; it acts on presigning only. The stubs type every handler
        # as returning None, but a choose-signer handler's return value is the signer.
        self._client.meta.events.register_first(
            "choose-signer.s3.GetObject",
            _presign_with_sigv4,  # type: ignore[arg-type]
            unique_id="drctl-presign-sigv4",
        )
        logging.getLogger("botocore.auth").addFilter(_QUIET_WHILE_PRESIGNING)
        _presigning.active = True
        try:
            return self._call(
                self._name(key),
                lambda: self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s),
            )
        finally:
            _presigning.active = False

    def open_read(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        if length == 0:
            return IteratorReader(iter(()))
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + key}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            kwargs["Range"] = f"bytes={start}-{end}"
        resp = self._call(self._name(key), lambda: self._client.get_object(**kwargs))
        body = resp["Body"]
        etag_fields = (resp.get("ETag"), resp.get("ServerSideEncryption"), resp.get("SSECustomerAlgorithm"))
        md5 = None if "Range" in kwargs else self._vouched_md5(*etag_fields)
        chunks = body.iter_chunks(chunk_size=1024 * 1024)
        return IteratorReader(self._translated(key, chunks), on_close=body.close, content_md5=md5)

    def _vouched_md5(self, etag: str | None, sse: str | None, sse_customer: str | None) -> str | None:
        return _etag_md5(etag, sse, sse_customer) if self._etag_md5 else None

    def _translated(self, key: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """A body's chunks, with a failure mid-body (a broken connection, a checksum that does not match)
        raised as the project's error."""
        try:
            yield from chunks
        except _sdk_errors() as exc:
            raise translate_s3_error(exc, self._name(key), self.endpoint) from exc

    def write(self, key: str, source: Readable, *, metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        meta = dict(metadata or {})
        first = read_full(source, self._part_size)
        if len(first) >= self._part_size:
            self._multipart_write(key, first, source, meta)
            return self.stat(key)
        checksum = _sha256_b64(first)
        resp = self._call(
            self._name(key),
            lambda: self._client.put_object(
                Bucket=self.bucket, Key=self.prefix + key, Body=first, Metadata=meta, ChecksumSHA256=checksum
            ),
        )
        # S3 has checked the SHA-256 against the bytes it received; the answer carries what a stat would,
        # so small objects (most of a backup) cost one request, not two.
        headers = resp["ResponseMetadata"].get("HTTPHeaders", {})
        modified = parsedate_to_datetime(headers["date"]) if "date" in headers else datetime.now(UTC)
        return ObjectInfo(
            key=key,
            size=len(first),
            modified=modified.astimezone(UTC),
            etag=str(resp["ETag"]).strip('"'),
            version_id=resp.get("VersionId"),
            hashes={"sha256": base64.b64decode(resp.get("ChecksumSHA256", checksum)).hex()},
            metadata=meta,
        )

    def _multipart_write(self, key: str, first: bytes, source: Readable, meta: dict[str, str]) -> None:
        name, full = self._name(key), self.prefix + key
        upload = self._call(
            name,
            lambda: self._client.create_multipart_upload(
                Bucket=self.bucket, Key=full, Metadata=meta, ChecksumAlgorithm="SHA256"
            ),
        )
        upload_id = upload["UploadId"]
        # The semaphore caps parts in memory: at most part_concurrency in flight plus the one being read.
        slots = threading.BoundedSemaphore(self._part_concurrency)

        def send(number: int, data: bytes) -> CompletedPartTypeDef:
            try:
                resp = self._call(
                    name,
                    lambda: self._client.upload_part(
                        Bucket=self.bucket,
                        Key=full,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ChecksumSHA256=_sha256_b64(data),
                    ),
                )
                return {"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": resp["ChecksumSHA256"]}
            finally:
                slots.release()

        futures: list[Future[CompletedPartTypeDef]] = []
        try:
            with ThreadPoolExecutor(self._part_concurrency, thread_name_prefix="s3-part") as pool:
                number = 1
                data = first
                while data:
                    slots.acquire()
                    futures.append(pool.submit(send, number, data))
                    if any(f.done() and f.exception() for f in futures):
                        break
                    number += 1
                    data = read_full(source, self._part_size)
                parts = [f.result() for f in futures]
            self._call(
                name,
                lambda: self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
            )
        except BaseException:
            # An upload that never completes must not linger and cost storage, nor ever become visible.
            self._abort(full, upload_id)
            raise

    def _abort(self, full_key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)
        except _sdk_errors():
            # Best effort: the caller is already failing with the original error, which matters more;
            # a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes what is left.
            return

    def delete(self, key: str) -> None:
        self._call(self._name(key), lambda: self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key))

    def set_metadata(self, key: str, metadata: Mapping[str, str]) -> None:
        self.copy_to(key, self, key, metadata)

    # -- ServerSideCopy ---------------------------------------------------------------------------------------

    def can_copy_to(self, dest: ObjectStore) -> bool:
        return isinstance(dest, S3Store) and dest.endpoint == self.endpoint

    def copy_to(self, key: str, dest: ObjectStore, dest_key: str, metadata: Mapping[str, str]) -> ObjectInfo:
        if not isinstance(dest, S3Store) or not self.can_copy_to(dest):
            raise Permanent(f"cannot copy {self._name(key)} server-side to {dest.url}")
        size = self.stat(key).size
        source: CopySourceTypeDef = {"Bucket": self.bucket, "Key": self.prefix + key}
        target = dest.prefix + dest_key
        if size <= self._copy_part_threshold:
            self._call(
                self._name(key),
                lambda: self._client.copy_object(
                    Bucket=dest.bucket,
                    Key=target,
                    CopySource=source,
                    Metadata=dict(metadata),
                    MetadataDirective="REPLACE",
                    ChecksumAlgorithm="SHA256",
                ),
            )
        else:
            self._multipart_copy(source, dest, target, size, metadata)
        return dest.stat(dest_key)

    def _multipart_copy(
        self, source: CopySourceTypeDef, dest: S3Store, target: str, size: int, metadata: Mapping[str, str]
    ) -> None:
        name = dest._name(target[len(dest.prefix) :])
        upload = self._call(
            name,
            lambda: self._client.create_multipart_upload(
                Bucket=dest.bucket, Key=target, Metadata=dict(metadata), ChecksumAlgorithm="SHA256"
            ),
        )
        upload_id = upload["UploadId"]
        part = max(COPY_PART_SIZE, -(-size // 10_000))
        try:
            parts: list[CompletedPartTypeDef] = []
            for number, offset in enumerate(range(0, size, part), start=1):
                end = min(offset + part, size) - 1
                resp = self._call(
                    name,
                    lambda n=number, o=offset, e=end: self._client.upload_part_copy(  # type: ignore[misc]
                        Bucket=dest.bucket,
                        Key=target,
                        UploadId=upload_id,
                        PartNumber=n,
                        CopySource=source,
                        CopySourceRange=f"bytes={o}-{e}",
                    ),
                )
                result = resp["CopyPartResult"]
                entry: CompletedPartTypeDef = {"PartNumber": number, "ETag": result["ETag"]}
                if "ChecksumSHA256" in result:
                    entry["ChecksumSHA256"] = result["ChecksumSHA256"]
                parts.append(entry)
            self._call(
                name,
                lambda: self._client.complete_multipart_upload(
                    Bucket=dest.bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
            )
        except BaseException:
            dest._abort(target, upload_id)
            raise

    # -- Versioned ----------------------------------------------------------------------------------------------

    def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = self.prefix + prefix
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full}
        while True:
            page = self._call(self.url, lambda kw=dict(kwargs): self._client.list_object_versions(**kw))  # type: ignore[misc]
            for v in page.get("Versions", []):
                yield self._info(v["Key"][len(self.prefix) :], v)
            if not page.get("IsTruncated"):
                return
            kwargs["KeyMarker"] = page["NextKeyMarker"]
            kwargs["VersionIdMarker"] = page["NextVersionIdMarker"]

    def open_version(self, key: str, version_id: str) -> ObjectReader:
        resp = self._call(
            self._name(key),
            lambda: self._client.get_object(Bucket=self.bucket, Key=self.prefix + key, VersionId=version_id),
        )
        body = resp["Body"]
        return IteratorReader(body.iter_chunks(chunk_size=1024 * 1024), on_close=body.close)
