"""Azure Blob Storage (and Azurite) as an ``ObjectStore``, with server-side copy within one account.

The ``ContainerClient`` is passed in, built by ``providers.factory`` with the SDK's own retries off. Every call
goes through the SDK, whatever signs for the container (a shared key, a SAS or an Azure identity), so the lab
tests the same request path that production identities take."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from orchestrator.errors import (
    AuthError,
    DrError,
    IntegrityError,
    InvalidInput,
    NotFound,
    Permanent,
    PermissionDenied,
    Transient,
)
from orchestrator.providers.base import (
    DEFAULT_PART_CONCURRENCY,
    DEFAULT_PART_SIZE,
    ETAG_MD5_HINT,
    HashType,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    Readable,
    has_dot_segment,
)
from orchestrator.providers.streams import IteratorReader, read_full
from orchestrator.retry import RetryPolicy

# The SDK takes about a tenth of a second to import; a command that never opens a container never loads it.
if TYPE_CHECKING:
    from azure.storage.blob import BlobProperties, ContainerClient

T = TypeVar("T")
_AUTH_CODES = {"AuthenticationFailed", "AuthorizationFailure", "InvalidAuthenticationInfo"}
_MD5_MISMATCH = (
    "the bytes sent to {name} do not have the MD5 their source vouches for: the source changed or was "
    "corrupted in transit; nothing was committed, run the copy again (" + ETAG_MD5_HINT + ")"
)

# An Azure server-side copy is asynchronous; this bounds how long we wait for one before giving up.
COPY_WAIT_S = 600.0


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _sdk_errors() -> tuple[type[Exception], ...]:
    # Imported when the first call is made, by which time azure-core is loaded anyway.
    from azure.core.exceptions import AzureError

    return (AzureError,)


def container_endpoint(container_url: str) -> str:
    """The account's blob endpoint of a container URL, without its query: a SAS in the query (whose
    signature may contain ``/``) must never reach a message."""
    parts = urlsplit(container_url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    path = parts.path.rstrip("/").rsplit("/", 1)[0]
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _check_claim(name: str, md5: bytes, claimed: bytes | None) -> None:
    if claimed is not None and md5 != claimed:
        raise IntegrityError(_MD5_MISMATCH.format(name=name))


def translate_azure_error(exc: Exception, what: str, endpoint: str) -> DrError:
    """Map azure-core's errors to the project's tree; ``what`` names the container or blob, never a secret."""
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        IncompleteReadError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return _unreachable(what, endpoint)
    no_answer = isinstance(exc, HttpResponseError) and not exc.status_code
    # An Azure identity that could get no token is a ClientAuthenticationError without a status: not transient.
    if isinstance(exc, IncompleteReadError) or (no_answer and not isinstance(exc, ClientAuthenticationError)):
        # The answer broke off (or never came) after the connection was made: a retry may well succeed.
        return Transient(f"the connection to {endpoint} broke off mid-answer for {what}; retry later")
    if isinstance(exc, HttpResponseError):
        raw_code = getattr(exc, "error_code", None) or ""
        code = str(raw_code.value if isinstance(raw_code, Enum) else raw_code)
        # ClientAuthenticationError is also how an Azure identity that could get no token is raised.
        not_found, auth = isinstance(exc, ResourceNotFoundError), isinstance(exc, ClientAuthenticationError)
        return _refused(what, exc.status_code or 0, code, not_found=not_found, auth=auth)
    if isinstance(exc, AzureError):
        return Transient(f"Azure request for {what} failed ({type(exc).__name__}); retry later")
    raise TypeError(f"not an Azure Blob error: {type(exc).__name__}") from exc


def _unreachable(what: str, endpoint: str) -> Transient:
    return Transient(
        f"cannot reach the Azure Blob endpoint {endpoint} for {what}; check the account URL and the network"
    )


def _refused(what: str, status: int, code: str, *, not_found: bool, auth: bool) -> DrError:
    """The service's answer, by error code first and status second (the SDK's classes where it raised them)."""
    if code == "Md5Mismatch":
        return IntegrityError(_MD5_MISMATCH.format(name=what))
    if not_found:
        if code == "ContainerNotFound":
            return NotFound(f"container of {what} does not exist; create it or fix the location")
        return NotFound(f"{what} does not exist")
    # Azurite answers a bad signature with AuthorizationFailure; Azure itself uses AuthenticationFailed.
    if auth or code in _AUTH_CODES:
        return AuthError(
            f"Azure rejected the credentials for {what}"
            + (f" ({code})" if code else "")
            + "; check AZURE_STORAGE_CONNECTION_STRING, the account key or SAS token, or `az login`"
        )
    if status == 403:
        return PermissionDenied(
            f"access denied to {what} ({code or status}); grant a Storage Blob Data role or a wider SAS"
        )
    if status >= 500 or status in (408, 429):
        return Transient(f"Azure Blob is unavailable for {what} ({code or status}); retry later")
    return Permanent(f"Azure Blob refused the request for {what} ({code or status})")


class AzureBlobStore:
    """Blobs under ``az://container/prefix`` in one storage account."""

    def __init__(
        self,
        container: ContainerClient,
        prefix: str = "",
        *,
        retry: RetryPolicy | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        part_concurrency: int = DEFAULT_PART_CONCURRENCY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._container = container
        self._container_name = str(container.container_name)
        self._account = str(container.account_name)
        self._endpoint = container_endpoint(str(container.url))
        self.prefix = prefix
        self._retry = retry or RetryPolicy()
        self._part_size = part_size
        self._part_concurrency = part_concurrency
        self._sleep = sleep

    @property
    def url(self) -> str:
        return f"az://{self._container_name}/{self.prefix}"

    @property
    def account(self) -> str:
        return self._account

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def native_hashes(self) -> frozenset[HashType]:
        return frozenset({"md5"})

    def _name(self, key: str) -> str:
        return f"az://{self._container_name}/{self.prefix}{key}"

    def key_problem(self, key: str) -> str | None:
        # The service resolves dot segments in a blob's URL (``a/../b`` is stored as ``b``): writing such a key
        # would silently replace another blob, so it is refused instead.
        if has_dot_segment(self.prefix + key):
            return "has a '.' or '..' segment, which Azure Blob Storage resolves onto another blob name"
        return None

    def _writable(self, key: str) -> str:
        problem = self.key_problem(key)
        if problem:
            raise InvalidInput(f"cannot write {self._name(key)}: the key {problem}; rename it or write it to S3")
        return self.prefix + key

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run an SDK call under the retry policy, its errors translated."""
        return self._retry.call_translating(
            fn, _sdk_errors(), lambda exc: translate_azure_error(exc, what, self.endpoint)
        )

    def _info(self, key: str, props: BlobProperties) -> ObjectInfo:
        hashes: dict[HashType, str] = {}
        md5 = props.content_settings.content_md5 if props.content_settings else None
        if md5:
            hashes["md5"] = bytes(md5).hex()
        modified = props.last_modified or datetime.fromtimestamp(0, UTC)
        return ObjectInfo(
            key=key,
            size=int(props.size or 0),
            modified=modified,
            etag=str(props.etag).strip('"') if props.etag else None,
            version_id=getattr(props, "version_id", None),
            hashes=hashes,
            metadata=dict(props.metadata or {}),
        )

    # -- ObjectStore ------------------------------------------------------------------------------------------

    def ensure_root(self) -> None:
        what = f"container az://{self._container_name}"
        # One page of a listing, not Get Container Properties: a container-scoped SAS may list but is never
        # allowed to read the container's properties.
        try:
            self._call(what, lambda: next(self._container.list_blobs(results_per_page=1).by_page(), None))
        except NotFound as exc:
            raise NotFound(f"{what} does not exist; create it or fix the location") from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = self.prefix + prefix
        token: str | None = None
        while True:

            def fetch(tok: str | None = token) -> tuple[list[BlobProperties], str | None]:
                # One page per call, restartable from its continuation token, so a retry repeats one page.
                pages = self._container.list_blobs(name_starts_with=full or None).by_page(continuation_token=tok)
                items = list(next(pages))
                return items, pages.continuation_token  # type: ignore[attr-defined]

            items, token = self._call(self.url, fetch)
            for props in items:
                yield self._info(props.name[len(self.prefix) :], props)
            if not token:
                return

    def stat(self, key: str) -> ObjectInfo:
        blob = self._container.get_blob_client(self.prefix + key)
        return self._info(key, self._call(self._name(key), blob.get_blob_properties))

    def open_read(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        if length == 0:
            return IteratorReader(iter(()))
        name = self._name(key)
        blob = self._container.get_blob_client(self.prefix + key)
        ranged = bool(start) or length is not None
        offset = start if ranged else None
        downloader = self._call(name, lambda: blob.download_blob(offset=offset, length=length))

        def chunks() -> Iterator[bytes]:
            try:
                yield from downloader.chunks()
            except _sdk_errors() as exc:
                raise translate_azure_error(exc, name, self.endpoint) from exc

        # A whole blob's stored MD5 vouches for the bytes (the SDK reads later chunks only while the blob's
        # ETag is unchanged); a range has none of its own.
        settings = downloader.properties.content_settings
        md5 = bytes(settings.content_md5).hex() if settings and settings.content_md5 and not ranged else None
        return IteratorReader(chunks(), content_md5=md5)

    def write(self, key: str, source: Readable, *, metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        """Every byte is checked by the service against an MD5 computed here, once, from the bytes sent: a
        transactional Content-MD5 per request, so corrupt bytes are refused before they are committed."""
        return self._write(key, source, dict(metadata or {}), None)

    def write_md5_checked(
        self, key: str, source: Readable, md5_hex: str, *, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        """``write`` of bytes whose MD5 the source vouches for: a blob written in one request sends that MD5 as
        its Content-MD5, so the service proves the bytes match it and nothing is hashed with MD5 here."""
        return self._write(key, source, dict(metadata or {}), bytes.fromhex(md5_hex))

    def _write(self, key: str, source: Readable, meta: dict[str, str], claimed: bytes | None) -> ObjectInfo:
        first = read_full(source, self._part_size)
        if len(first) >= self._part_size:
            return self._block_write(key, first, source, meta, claimed)
        name = self._name(key)
        blob = self._container.get_blob_client(self._writable(key))
        # A claimed MD5 goes to the service unchecked here: it refuses the bytes (Md5Mismatch) if they differ.
        # It is sent as a header of this one request, through the SDK's own headers policy (signed like the
        # rest), because the SDK's validate_content would hash the bytes a second time.
        md5 = claimed if claimed is not None else hashlib.md5(first).digest()  # noqa: S324 - see write()
        resp = self._call(
            name,
            lambda: blob.upload_blob(first, overwrite=True, metadata=meta, headers={"Content-MD5": _b64(md5)}),
        )
        return ObjectInfo(
            key=key,
            size=len(first),
            modified=resp.get("last_modified") or datetime.now(UTC),
            etag=str(resp["etag"]).strip('"'),
            version_id=resp.get("version_id"),
            hashes={"md5": md5.hex()},
            metadata=meta,
        )

    def _block_write(
        self, key: str, first: bytes, source: Readable, meta: dict[str, str], claimed: bytes | None
    ) -> ObjectInfo:
        """Stage blocks in parallel, each checked by the service against its own MD5, then commit them.

        The blob's whole-content MD5 is only recorded when the source vouched for one: a whole-blob MD5 is a
        second MD5 pass over every byte, and the service never checks it against the blocks. The claim is
        checked here, before the commit, so a blob never carries an MD5 its bytes do not have."""
        from azure.storage.blob import BlobBlock, ContentSettings

        name = self._name(key)
        blob = self._container.get_blob_client(self._writable(key))
        # A nonce per write keeps our block ids apart from any other writer's uncommitted blocks.
        nonce = secrets.token_hex(8)
        whole_md5 = hashlib.md5() if claimed is not None else None  # noqa: S324 - checks a claim, see write()
        slots = threading.BoundedSemaphore(self._part_concurrency)

        def stage(block_id: str, data: bytes) -> None:
            # validate_content: the SDK hashes the block in this part's thread (hashlib releases the GIL) and
            # the service refuses the block if its bytes do not match.
            try:
                self._call(name, lambda: blob.stage_block(block_id, data, validate_content=True))
            finally:
                slots.release()

        block_ids: list[str] = []
        futures: list[Future[None]] = []
        size = 0
        with ThreadPoolExecutor(self._part_concurrency, thread_name_prefix="az-block") as pool:
            data = first
            while data:
                if whole_md5 is not None:
                    whole_md5.update(data)
                size += len(data)
                block_id = base64.b64encode(f"{nonce}-{len(block_ids):06d}".encode()).decode()
                block_ids.append(block_id)
                slots.acquire()
                futures.append(pool.submit(stage, block_id, data))
                if any(f.done() and f.exception() for f in futures):
                    break
                data = read_full(source, self._part_size)
            for f in futures:
                f.result()
        # Uncommitted blocks are invisible and garbage-collected by the service after a week, so a failure
        # before this commit leaves no blob and no previous blob is harmed.
        digest = whole_md5.digest() if whole_md5 is not None else None
        if digest is not None:
            _check_claim(name, digest, claimed)
        settings = ContentSettings(content_md5=bytearray(digest)) if digest is not None else None
        blocks = [BlobBlock(block_id=b) for b in block_ids]
        resp: dict[str, Any] = self._call(
            name, lambda: blob.commit_block_list(blocks, metadata=meta, content_settings=settings)
        )
        # The commit's answer carries what a stat would: one request fewer per large object.
        return ObjectInfo(
            key=key,
            size=size,
            modified=resp.get("last_modified") or datetime.now(UTC),
            etag=str(resp["etag"]).strip('"'),
            version_id=resp.get("version_id"),
            hashes={"md5": digest.hex()} if digest is not None else {},
            metadata=meta,
        )

    def delete(self, key: str) -> None:
        blob = self._container.get_blob_client(self.prefix + key)
        try:
            self._call(self._name(key), lambda: blob.delete_blob(delete_snapshots="include"))
        except NotFound:
            return

    def set_metadata(self, key: str, metadata: Mapping[str, str]) -> None:
        blob = self._container.get_blob_client(self.prefix + key)
        self._call(self._name(key), lambda: blob.set_blob_metadata(dict(metadata)))

    # -- BuildFromUrl -----------------------------------------------------------------------------------------

    def build_from_url(self, key: str, source_url: str, size: int, metadata: Mapping[str, str]) -> ObjectInfo:
        # Imported here: the module builds on this one.
        from orchestrator.providers.azure_from_url import copy_from_url

        return copy_from_url(self, key, source_url, size, metadata)

    # -- ServerSideCopy ---------------------------------------------------------------------------------------

    def can_copy_to(self, dest: ObjectStore) -> bool:
        return isinstance(dest, AzureBlobStore) and dest.endpoint == self.endpoint

    def copy_to(self, key: str, dest: ObjectStore, dest_key: str, metadata: Mapping[str, str]) -> ObjectInfo:
        if not isinstance(dest, AzureBlobStore) or not self.can_copy_to(dest):
            raise Permanent(f"cannot copy {self._name(key)} server-side to {dest.url}")
        source_url = self._container.get_blob_client(self.prefix + key).url
        target = dest._container.get_blob_client(dest.prefix + dest_key)
        name = dest._name(dest_key)
        props: dict[str, Any] = self._call(
            name, lambda: target.start_copy_from_url(source_url, metadata=dict(metadata))
        )
        status = props.get("copy_status")
        deadline = time.monotonic() + COPY_WAIT_S
        while status == "pending":
            if time.monotonic() > deadline:
                self._call(name, lambda: target.abort_copy(props["copy_id"]))
                raise Transient(f"server-side copy to {name} did not finish in {COPY_WAIT_S:.0f}s; retry")
            self._sleep(0.5)
            status = self._call(name, target.get_blob_properties).copy.status
        if status != "success":
            raise Permanent(f"server-side copy to {name} ended as {status!r}")
        return dest.stat(dest_key)
