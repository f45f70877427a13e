"""A lean signed HTTP client for the Blob REST calls on a backup's hot path: Put Blob, Put Block, Put Block List,
Get Blob Properties, List Blobs, Get Blob and Delete Blob.

The SDK's pipeline (policies, tracing, deserialisation) costs about a millisecond of CPU per request, more than
the request itself on a busy machine; these calls are simple enough to make directly over urllib3. Only a
shared key or a SAS token is handled here; ``LeanBlobClient.for_container`` returns None for anything else
(an Azure identity), and the store then keeps using the SDK. Failures are raised as ``BlobHttpError`` (with the
status and the service's error code, as the SDK's ``HttpResponseError`` carries them) or ``BlobConnectError``;
``translate_azure_error`` classifies them as it did when this client raised azure-core's exceptions, without
importing azure-core (0.02 s).
"""

from __future__ import annotations

import base64
import hmac
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import urllib3

from orchestrator.providers.lean_http import streamed_body


class BlobHttpError(Exception):
    """The service answered with an error status; ``error_code`` is its ``x-ms-error-code``."""

    def __init__(self, status: int, code: str, method: str) -> None:
        super().__init__(f"{method} failed: {status} {code}".strip())
        self.status_code = status
        self.error_code = code


class BlobConnectError(Exception):
    """No complete answer: the endpoint refused or timed out, or the connection broke mid-response."""


LEAN_ERRORS: tuple[type[Exception], ...] = (BlobHttpError, BlobConnectError)

# The REST version these requests speak: the SDK's own newest (a unit test keeps the two in step).
API_VERSION = "2026-10-06"

# Response headers, looked up case-insensitively (urllib3's HTTPHeaderDict).
Headers = Mapping[str, str]
_SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)


class LeanBlobClient:
    """Signed requests against one container; thread-safe (urllib3's pool is)."""

    def __init__(
        self,
        container_url: str,
        account: str,
        api_version: str,
        *,
        account_key: bytes | None,
        sas: str | None,
        pool: urllib3.PoolManager,
    ) -> None:
        parts = urlsplit(container_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._path = parts.path.rstrip("/")  # /container, or /account/container on an emulator
        self._account = account
        self._version = api_version
        self._key = account_key
        self._sas = sas
        self._pool = pool

    @classmethod
    def for_container(cls, container: object, pool: urllib3.PoolManager) -> LeanBlobClient | None:
        """A lean client with the same endpoint and credential as an SDK ``ContainerClient``, or None when its
        credential is one this client does not sign (an Azure identity)."""
        from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy as _SharedKey

        url = str(getattr(container, "url", ""))
        credential = getattr(container, "credential", None)
        account = str(getattr(container, "account_name", ""))
        version = str(getattr(container, "api_version", ""))
        if not url or not account or not version:
            return None
        base, _, query = url.partition("?")
        if isinstance(credential, _SharedKey):
            return cls(
                base, account, version, account_key=base64.b64decode(credential.account_key), sas=None, pool=pool
            )
        if credential is None and query:
            return cls(base, account, version, account_key=None, sas=query, pool=pool)
        return None

    # -- calls ----------------------------------------------------------------------------------------------

    def put_blob(self, name: str, data: bytes, md5_b64: str, metadata: Mapping[str, str]) -> Headers:
        """Create or replace a block blob in one request; the service checks the bytes against ``md5_b64``."""
        headers = {"x-ms-blob-type": "BlockBlob", "Content-MD5": md5_b64, **_meta(metadata)}
        return self._send("PUT", name, {}, headers, data, 201).headers

    def put_block(self, name: str, block_id: str, data: bytes, md5_b64: str) -> None:
        """Stage one uncommitted block; the service checks it against ``md5_b64``."""
        self._send("PUT", name, {"comp": "block", "blockid": block_id}, {"Content-MD5": md5_b64}, data, 201)

    def put_block_list(
        self, name: str, block_ids: Sequence[str], content_md5_b64: str | None, metadata: Mapping[str, str]
    ) -> Headers:
        """Commit staged blocks, in order, as the blob's content, recording its whole-blob MD5 if given."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?><BlockList>'
            + "".join(f"<Latest>{escape(b)}</Latest>" for b in block_ids)
            + "</BlockList>"
        ).encode()
        headers = _meta(metadata)
        if content_md5_b64 is not None:
            headers["x-ms-blob-content-md5"] = content_md5_b64
        return self._send("PUT", name, {"comp": "blocklist"}, headers, body, 201).headers

    def get_properties(self, name: str) -> Headers:
        return self._send("HEAD", name, {}, {}, None, 200).headers

    def list_page(self, prefix: str, marker: str | None, max_results: int | None = None) -> ListPage:
        """One page of List Blobs (names and properties) and the marker of the next, if any."""
        query = {"restype": "container", "comp": "list"}
        if prefix:
            query["prefix"] = prefix
        if marker:
            query["marker"] = marker
        if max_results:
            query["maxresults"] = str(max_results)
        resp = self._send("GET", "", query, {}, None, 200)
        return parse_list_page(bytes(resp.data))

    def get_blob(self, name: str, byte_range: str | None) -> tuple[Headers, Iterator[bytes], Callable[[], None]]:
        """Headers, the body's chunks and a close hook of Get Blob (a range such as ``bytes=0-99``, or all)."""
        headers = {"x-ms-range": byte_range} if byte_range else {}
        resp = self._send("GET", name, {}, headers, None, 206 if byte_range else 200, preload=False)
        body, close = streamed_body(resp, lambda exc: BlobConnectError(type(exc).__name__))
        return resp.headers, body, close

    def delete_blob(self, name: str) -> None:
        self._send("DELETE", name, {}, {"x-ms-delete-snapshots": "include"}, None, 202)

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        name: str,
        query: Mapping[str, str],
        headers: dict[str, str],
        body: bytes | None,
        ok: int,
        *,
        preload: bool = True,
    ) -> urllib3.BaseHTTPResponse:
        """Send a signed request; an answer other than ``ok`` raises ``BlobHttpError``. A preloaded answer's
        connection is back in the pool; a streamed one's is released by its body's close hook."""
        path = f"{self._path}/{quote(name, safe='/~')}" if name else self._path
        headers["x-ms-date"] = formatdate(usegmt=True)
        headers["x-ms-version"] = self._version
        if body is not None:
            headers["Content-Length"] = str(len(body))
        params = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        if self._sas is not None:
            params = f"{params}&{self._sas}" if params else self._sas
        else:
            headers["Authorization"] = self._shared_key(method, path, query, headers)
        url = self._origin + path + (f"?{params}" if params else "")
        try:
            resp = self._pool.request(
                method, url, body=body, headers=headers, retries=False, redirect=False, preload_content=preload
            )
        except urllib3.exceptions.HTTPError as exc:  # refused, timed out, or broken off mid-answer
            raise BlobConnectError(type(exc).__name__) from exc
        if resp.status != ok:
            code = resp.headers.get("x-ms-error-code") or ""
            resp.drain_conn()
            resp.release_conn()
            raise BlobHttpError(resp.status, code, method)
        return resp

    def _shared_key(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> str:
        assert self._key is not None
        lower = {k.lower(): v for k, v in headers.items()}
        if lower.get("content-length") == "0":
            del lower["content-length"]
        standard = "\n".join(lower.get(h, "") for h in _SIGNED_HEADERS)
        ms = sort_ms_headers([(k, v) for k, v in lower.items() if k.startswith("x-ms-")])
        canonical_headers = "".join(f"{k}:{v}\n" for k, v in ms)
        canonical_query = "".join(f"\n{k.lower()}:{unquote(v)}" for k, v in sorted(query.items()))
        to_sign = f"{method}\n{standard}\n{canonical_headers}/{self._account}{path}{canonical_query}"
        signature = base64.b64encode(hmac.digest(self._key, to_sign.encode(), "sha256")).decode()
        return f"SharedKey {self._account}:{signature}"


def sort_ms_headers(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``x-ms-*`` headers in the order the service signs them.

    The service collates names with its own table (``_`` and ``-`` do not sort as in ASCII). Where every pair
    of names first differs at a letter or digit, that order is plain ASCII order; otherwise the SDK's
    implementation of the table is used (imported only then: the SDK is slow to import)."""
    ordered = sorted(pairs)
    for (a, _), (b, _) in itertools.pairwise(ordered):
        i = next((n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        if i >= min(len(a), len(b)) or not (a[i].isalnum() and b[i].isalnum()):
            from azure.storage.blob._shared.authentication import _storage_header_sort

            return list(_storage_header_sort(pairs))
    return ordered


@dataclass(frozen=True)
class ListedBlob:
    name: str
    properties: Mapping[str, str]
    version_id: str | None


@dataclass(frozen=True)
class ListPage:
    blobs: list[ListedBlob]
    next_marker: str | None


def parse_list_page(body: bytes) -> ListPage:
    # expat resolves no external entities; the answer comes from the storage endpoint we signed for.
    root = ElementTree.fromstring(body)  # noqa: S314
    blobs: list[ListedBlob] = []
    for item in root.iterfind("Blobs/Blob"):
        props: dict[str, Any] = {p.tag: p.text or "" for p in item.iterfind("Properties/*")}
        blobs.append(ListedBlob(item.findtext("Name") or "", props, item.findtext("VersionId")))
    return ListPage(blobs, root.findtext("NextMarker") or None)


def _meta(metadata: Mapping[str, str]) -> dict[str, str]:
    return {f"x-ms-meta-{k}": v for k, v in metadata.items()}


def http_date(value: str | None) -> datetime | None:
    return parsedate_to_datetime(value) if value else None
