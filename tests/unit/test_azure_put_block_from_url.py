"""S3 -> Azure Blob copies built by the service with Put Block From URL, replayed against recorded answers.

No emulator implements Put Block From URL (Azurite refuses it), so the request path is checked here against
request/response pairs of the real Blob service taken from public material: azure-storage-blob's own test
recordings, and answers quoted in GitHub issues (each file under ``recorded/azure_put_block_from_url`` names
its source). A stand-in for azure-core's HTTP transport replays them and checks each request drctl sends:
method, path, query, and the headers that carry the copy (x-ms-copy-source, x-ms-source-range, x-ms-version,
Content-Length, x-ms-meta-*)."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import boto3
import pytest
from azure.core.pipeline.transport import HttpResponse, HttpTransport
from azure.core.rest import HttpRequest
from azure.core.utils import CaseInsensitiveDict
from azure.storage.blob import ContainerClient
from botocore.stub import Stubber

from orchestrator.errors import AuthError, InvalidInput, Permanent, ServerSideUnavailable, Transient
from orchestrator.providers.azure_blob import AzureBlobStore
from orchestrator.providers.azure_from_url import (
    MAX_BLOCK_SIZE,
    MAX_BLOCKS,
    block_id,
    block_size_for,
    copy_from_url,
)
from orchestrator.providers.base import READ_TIMEOUT_S
from orchestrator.providers.s3 import S3Store
from orchestrator.retry import RetryPolicy

RECORDED = Path(__file__).parent / "recorded" / "azure_put_block_from_url"
ACCOUNT_URL = "https://storagename.blob.core.windows.net"
CONTAINER = "utcontainer7ae32a6"
BLOB = "destblob7ae32a6"
API_VERSION = "2021-08-06"
"""The service version the recordings were made with; the client is pinned to it so x-ms-version must match."""
# AWS's documented example key pair and a made-up session token: a real-looking presigned URL, signed offline.
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKENAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _recorded(name: str) -> list[dict[str, Any]]:
    doc = json.loads((RECORDED / name).read_text(encoding="utf-8"))
    assert doc["source"], f"{name} must say where its pairs come from"
    entries: list[dict[str, Any]] = doc["entries"]
    return entries


def _body(entry: Mapping[str, Any]) -> bytes:
    body = entry.get("ResponseBody")
    if body is None:
        return b""
    return ("".join(body) if isinstance(body, list) else str(body)).encode("utf-8")


# -- the transport stand-in ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One request as drctl's client sent it."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    options: Mapping[str, Any]

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query, keep_blank_values=True).items()}


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, Any]
    body: bytes = b""

    @classmethod
    def of(cls, entry: Mapping[str, Any], status: int | None = None, **extra_headers: str) -> Reply:
        headers = {k: ", ".join(v) if isinstance(v, list) else v for k, v in entry["ResponseHeaders"].items()}
        headers.update(extra_headers)
        return cls(status or int(entry["StatusCode"]), headers, _body(entry))


class _Answer(HttpResponse):
    def __init__(self, request: HttpRequest, reply: Reply) -> None:
        super().__init__(request, None)  # type: ignore[arg-type]
        self.status_code = reply.status
        self.headers = CaseInsensitiveDict(reply.headers)
        self.reason = "recorded"
        self.content_type = self.headers.get("Content-Type")
        self._data = reply.body

    def body(self) -> bytes:
        return self._data


@dataclass
class Replay(HttpTransport[HttpRequest, _Answer]):
    """azure-core's transport, answering each request with ``answer(request)`` and keeping what was sent."""

    answer: Callable[[Sent], Reply]
    sent: list[Sent] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, request: HttpRequest, **kwargs: Any) -> _Answer:
        body = request.content if isinstance(request.content, bytes) else b""
        seen = Sent(request.method, request.url, dict(request.headers), body, kwargs)
        with self._lock:
            self.sent.append(seen)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.005)  # long enough for concurrent stages to overlap
            return _Answer(request, self.answer(seen))
        finally:
            with self._lock:
                self.in_flight -= 1

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def stages(self) -> list[Sent]:
        return [s for s in self.sent if s.query.get("comp") == "block"]

    def commits(self) -> list[Sent]:
        return [s for s in self.sent if s.query.get("comp") == "blocklist"]


def _store(transport: Replay, prefix: str = "") -> AzureBlobStore:
    container = ContainerClient(
        ACCOUNT_URL,
        CONTAINER,
        credential={"account_name": "storagename", "account_key": base64.b64encode(b"k" * 64).decode()},
        transport=transport,
        api_version=API_VERSION,
        retry_total=0,
    )
    return AzureBlobStore(container, prefix, retry=RetryPolicy(attempts=3, initial_wait_s=0, max_wait_s=0))


def _wire_id(index: int, block_size: int) -> str:
    """A block id as it goes on the wire: the SDK base64-encodes the id it is given."""
    return base64.b64encode(block_id(block_size, index).encode()).decode()


def _committed_ids(commit: Sent) -> list[str]:
    root = ElementTree.fromstring(commit.body)
    assert all(child.tag == "Latest" for child in root)
    return [child.text or "" for child in root]


def _properties_from(recorded_get: Mapping[str, Any], size: int, commit: Sent | None) -> Reply:
    """What Get Blob Properties answers, from the recorded read of the same blob: the same headers with the
    whole size, and (as the service does) the metadata the commit set."""
    reply = Reply.of(recorded_get, status=200)
    headers = {k: v for k, v in reply.headers.items() if k not in ("Content-Range", "Accept-Ranges")}
    headers["Content-Length"] = str(size)
    if commit is not None:
        headers.update({k: v for k, v in commit.headers.items() if k.lower().startswith("x-ms-meta-")})
    return Reply(200, headers)


# -- presigned S3 URLs (secrets by construction) -----------------------------------------------------------


@pytest.fixture
def s3_client() -> Iterator[Any]:
    client = boto3.client(
        "s3",
        region_name="eu-west-1",
        endpoint_url="https://s3.eu-west-1.amazonaws.com",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
    )
    yield client
    client.close()


@dataclass(frozen=True)
class Presigned:
    url: str

    @property
    def secrets(self) -> list[str]:
        """Every part of the URL that must never be shown, raw and as the URL encodes it."""
        values = parse_qs(urlsplit(self.url).query)
        raw = [values["X-Amz-Signature"][0], values["X-Amz-Credential"][0], values["X-Amz-Security-Token"][0]]
        return [*raw, *(quote(v, safe="") for v in raw), ACCESS_KEY, SESSION_TOKEN, urlsplit(self.url).query]


def _presigned(client: Any, key: str = "dir/a b+c=é.bin") -> Presigned:
    return Presigned(S3Store(client, "dr-source", "backups/").presigned_get(key, 3600))


def _assert_clean(text: str, presigned: Presigned) -> None:
    for secret in presigned.secrets:
        assert secret not in text


# -- the recorded copy, request for request ------------------------------------------------------------------


def test_the_recorded_copy_is_replayed_request_for_request() -> None:
    """azure-storage-blob's recording of an 8 KiB copy in two 4 KiB blocks: drctl sends the same requests."""
    puts, gets = _recorded("sdk_put_block_from_url_and_commit.json"), []
    blocks, commit_entry, read_entry = puts[:2], puts[2], puts[3]
    source_url = blocks[0]["RequestHeaders"]["x-ms-copy-source"]
    by_range = {b["RequestHeaders"]["x-ms-source-range"]: b for b in blocks}

    def answer(sent: Sent) -> Reply:
        if sent.query.get("comp") == "block":
            entry = by_range[sent.headers["x-ms-source-range"]]
            index = blocks.index(entry)
            recorded = urlsplit(entry["RequestUri"])
            assert sent.method == entry["RequestMethod"]
            assert sent.path == recorded.path
            assert sent.query["comp"] == "block"
            # The recording's ids are its test's own ("1", "2"); drctl's are its deterministic ones.
            assert sent.query["blockid"] == _wire_id(index, 4096)
            for name in ("x-ms-copy-source", "x-ms-source-range", "x-ms-version", "Content-Length"):
                assert sent.headers[name] == entry["RequestHeaders"][name], name
            assert not any(k.lower().startswith("x-ms-meta-") for k in sent.headers)
            return Reply.of(entry)
        if sent.query.get("comp") == "blocklist":
            recorded = urlsplit(commit_entry["RequestUri"])
            assert (sent.method, sent.path, recorded.query) == (
                commit_entry["RequestMethod"],
                recorded.path,
                "comp=blocklist",
            )
            for name in ("x-ms-version", "Content-Type"):
                assert sent.headers[name] == commit_entry["RequestHeaders"][name], name
            assert sent.headers["Content-Length"] == str(len(sent.body))
            return Reply.of(commit_entry)
        assert sent.method == "HEAD"
        assert sent.path == urlsplit(read_entry["RequestUri"]).path
        gets.append(sent)
        return _properties_from(read_entry, 8192, None)

    transport = Replay(answer)
    info = copy_from_url(_store(transport), BLOB, source_url, 8192, {}, block_size=4096, concurrency=2)

    assert sorted(s.headers["x-ms-source-range"] for s in transport.stages()) == sorted(by_range)
    assert [_committed_ids(c) for c in transport.commits()] == [[_wire_id(0, 4096), _wire_id(1, 4096)]]
    assert len(gets) == 1
    assert info.size == 8192
    # As the service reported them in the recording (its read's headers), not copied here by hand.
    assert info.etag == read_entry["ResponseHeaders"]["ETag"].strip('"')
    assert info.modified == parsedate_to_datetime(read_entry["ResponseHeaders"]["Last-Modified"])


def test_a_multi_block_object_is_staged_range_by_range_and_committed_in_order(s3_client: Any) -> None:
    entries = _recorded("sdk_put_block_from_url_and_commit.json")
    block_reply, commit_entry, read_entry = entries[0], entries[2], entries[3]
    presigned = _presigned(s3_client)
    size, block = 10_000, 4096
    metadata = {"drctl_source_key": "dir/a b+c=\\xe9.bin", "drctl_run": "20261204T180000Z"}
    commits: list[Sent] = []

    def answer(sent: Sent) -> Reply:
        if sent.query.get("comp") == "block":
            return Reply.of(block_reply)
        if sent.query.get("comp") == "blocklist":
            commits.append(sent)
            return Reply.of(commit_entry)
        return _properties_from(read_entry, size, commits[-1] if commits else None)

    transport = Replay(answer)
    info = copy_from_url(_store(transport, "points/"), "blob-1", presigned.url, size, metadata, block, concurrency=2)

    stages = sorted(transport.stages(), key=lambda s: s.headers["x-ms-source-range"])
    assert sorted(s.headers["x-ms-source-range"] for s in stages) == [
        "bytes=0-4095",
        "bytes=4096-8191",
        "bytes=8192-9999",  # the last block is short
    ]
    for sent in stages:
        assert sent.method == "PUT"
        assert sent.path == f"/{CONTAINER}/points/blob-1"
        # Sent exactly as S3 signed it: a re-encoded path or query would no longer match the signature.
        assert sent.headers["x-ms-copy-source"] == presigned.url
        assert sent.headers["x-ms-version"] == API_VERSION
        assert sent.headers["Content-Length"] == "0"
        assert sent.options["read_timeout"] >= READ_TIMEOUT_S
    by_range = {s.headers["x-ms-source-range"]: s.query["blockid"] for s in stages}
    expected_ids = [_wire_id(i, block) for i in range(3)]
    assert [by_range["bytes=0-4095"], by_range["bytes=4096-8191"], by_range["bytes=8192-9999"]] == expected_ids
    assert len(transport.stages()) == 3  # each range once
    assert transport.most_in_flight <= 2

    [commit] = transport.commits()
    assert commit.method == "PUT"
    assert commit.path == f"/{CONTAINER}/points/blob-1"
    assert _committed_ids(commit) == expected_ids
    assert {k[len("x-ms-meta-") :]: v for k, v in commit.headers.items() if k.startswith("x-ms-meta-")} == metadata
    # The commit comes after every block, and the stat after the commit.
    assert transport.sent.index(commit) == 3
    assert transport.sent[-1].method == "HEAD"
    assert (info.key, info.size, dict(info.metadata)) == ("blob-1", size, metadata)


def test_an_empty_object_is_committed_with_no_block(s3_client: Any) -> None:
    entries = _recorded("sdk_put_block_from_url_and_commit.json")

    def answer(sent: Sent) -> Reply:
        if sent.query.get("comp") == "blocklist":
            return Reply.of(entries[2])
        return _properties_from(entries[3], 0, None)

    transport = Replay(answer)
    info = copy_from_url(_store(transport), "empty", _presigned(s3_client).url, 0, {"k": "v"})
    assert transport.stages() == []
    assert [_committed_ids(c) for c in transport.commits()] == [[]]
    assert info.size == 0


def test_a_blob_committed_short_is_an_integrity_error_and_is_removed(s3_client: Any) -> None:
    entries = _recorded("sdk_put_block_from_url_and_commit.json")

    def answer(sent: Sent) -> Reply:
        if sent.query.get("comp") == "block":
            return Reply.of(entries[0])
        if sent.query.get("comp") == "blocklist":
            return Reply.of(entries[2])
        if sent.method == "DELETE":
            return Reply(202, {"Content-Length": "0"})
        return _properties_from(entries[3], 8192, None)  # the recorded blob: 8192 bytes, not 9000

    transport = Replay(answer)
    with pytest.raises(Exception, match="committed with 8192 bytes where its source has 9000") as caught:
        copy_from_url(_store(transport), BLOB, _presigned(s3_client).url, 9000, {}, block_size=4096)
    assert type(caught.value).__name__ == "IntegrityError"
    assert [s.method for s in transport.sent][-1] == "DELETE"


# -- answers that mean "stream it instead" --------------------------------------------------------------------

UNAVAILABLE = {
    "Azurite: Put Blob From URL is not implemented (501)": (
        "azurite_3.37.0_from_url.json",
        1,
        "APINotImplemented",
        None,
    ),
    "Azurite: a source outside itself (404)": ("azurite_3.37.0_from_url.json", 0, "CannotVerifyCopySource", None),
    "Azure: a source that wants a credential (401)": (
        "sdk_cannot_verify_copy_source_401.json",
        0,
        "CannotVerifyCopySource",
        None,
    ),
    "Azure: S3 refused the presigned URL (403)": (
        "issue_720_cannot_verify_copy_source_403.json",
        0,
        "CannotVerifyCopySource",
        403,
    ),
}


@pytest.mark.parametrize(("recording", "index", "code", "source_status"), UNAVAILABLE.values(), ids=UNAVAILABLE)
def test_a_service_that_cannot_copy_from_the_url_raises_the_fallback_error(
    s3_client: Any, caplog: pytest.LogCaptureFixture, recording: str, index: int, code: str, source_status: int | None
) -> None:
    caplog.set_level(logging.DEBUG)
    entry = _recorded(recording)[index]
    presigned = _presigned(s3_client)

    def answer(sent: Sent) -> Reply:
        assert sent.method == entry["RequestMethod"] == "PUT"
        assert sent.query["comp"] == "block"
        assert sent.headers["x-ms-copy-source"] == presigned.url
        return Reply.of(entry)

    transport = Replay(answer)
    with pytest.raises(ServerSideUnavailable) as caught:
        copy_from_url(_store(transport), BLOB, presigned.url, 9000, {}, block_size=4096, concurrency=1)

    err = caught.value
    assert (err.code, err.source_status) == (code, source_status)
    # Permanent, so the store's retries never repeat it: one request, no commit, nothing left to clean up.
    assert isinstance(err, Permanent)
    assert not isinstance(err, Transient)
    assert len(transport.sent) == 1
    assert transport.commits() == []
    message = str(err)
    assert "\n" not in message
    assert ACCOUNT_URL in message
    assert f"az://{CONTAINER}/{BLOB}" in message
    _assert_clean(message, presigned)
    _assert_clean("".join(traceback.format_exception(err)), presigned)
    _assert_clean(caplog.text, presigned)


def test_a_rejected_destination_credential_is_an_auth_error_that_never_shows_the_url(
    s3_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Azure's AuthenticationFailed answer quotes the string it signed, x-ms-copy-source included: the presigned
    URL comes back in the error body. drctl's message, its chained cause and the logs must not carry it."""
    caplog.set_level(logging.DEBUG)
    [entry] = _recorded("issue_661_authentication_failed_403.json")
    presigned = _presigned(s3_client)
    echoed: list[bytes] = []

    def answer(sent: Sent) -> Reply:
        reply = Reply.of(entry)
        # Quoted inside XML, as the service quotes it.
        fill = {"source_url": escape(sent.headers["x-ms-copy-source"]), "blockid": escape(sent.query["blockid"])}
        body = reply.body.decode().format(**fill)
        echoed.append(body.encode())
        return Reply(reply.status, reply.headers, body.encode())

    transport = Replay(answer)
    with pytest.raises(AuthError) as caught:
        copy_from_url(_store(transport), BLOB, presigned.url, 9000, {}, block_size=4096, concurrency=1)

    # The leak is real: the service's answer carries the signature (else this test could not fail).
    assert any(presigned.secrets[0].encode() in body for body in echoed)
    err = caught.value
    assert "\n" not in str(err)
    assert "Azure rejected the credentials" in str(err)
    _assert_clean(str(err), presigned)
    # The chain still says what the service answered, masked, and holds nothing unmasked besides.
    assert "AuthenticationFailed" in str(err.__cause__)
    chained: BaseException | None = err
    while chained is not None:
        _assert_clean(str(chained), presigned)
        assert chained.__context__ is None or chained.__context__ is chained.__cause__
        chained = chained.__cause__
    _assert_clean("".join(traceback.format_exception(err)), presigned)
    _assert_clean(caplog.text, presigned)
    assert transport.commits() == []


def test_a_throttled_block_is_retried_by_the_store_policy(s3_client: Any) -> None:
    """The stage goes through the store's own retries: a 503 (the recorded 401's shape, as ServerBusy) is
    retried and the copy completes."""
    entries = _recorded("sdk_put_block_from_url_and_commit.json")
    busy = Reply(503, {"Content-Type": "application/xml", "x-ms-error-code": "ServerBusy"}, b"")
    first = threading.Event()

    def answer(sent: Sent) -> Reply:
        if sent.query.get("comp") == "block":
            if not first.is_set():
                first.set()
                return busy
            return Reply.of(entries[0])
        if sent.query.get("comp") == "blocklist":
            return Reply.of(entries[2])
        return _properties_from(entries[3], 4096, None)

    transport = Replay(answer)
    info = copy_from_url(_store(transport), BLOB, _presigned(s3_client).url, 4096, {}, block_size=4096)
    assert len(transport.stages()) == 2
    assert info.size == 4096


# -- block plans ------------------------------------------------------------------------------------------------


def test_blocks_grow_only_as_much_as_the_block_count_limit_needs() -> None:
    mib = 1024 * 1024
    assert block_size_for(10 * mib) == 100 * mib
    assert block_size_for(MAX_BLOCKS * 100 * mib) == 100 * mib
    grown = block_size_for(MAX_BLOCKS * 100 * mib + 1)
    assert grown > 100 * mib
    assert -(-(MAX_BLOCKS * 100 * mib + 1) // grown) <= MAX_BLOCKS
    assert block_size_for(MAX_BLOCKS * MAX_BLOCK_SIZE) == MAX_BLOCK_SIZE
    with pytest.raises(InvalidInput, match="larger than an Azure block blob"):
        block_size_for(MAX_BLOCKS * MAX_BLOCK_SIZE + 1)
    with pytest.raises(ValueError, match="1 to"):
        block_size_for(10, MAX_BLOCK_SIZE + 1)


def test_block_ids_are_ordered_distinct_and_as_long_as_the_stores_own() -> None:
    ids = [block_id(size, i) for size in (1, 4096, MAX_BLOCK_SIZE) for i in (0, 1, MAX_BLOCKS - 1)]
    assert len(set(ids)) == len(ids)
    assert len({len(i) for i in ids}) == 1
    assert [block_id(4096, i) for i in range(3)] == sorted(block_id(4096, i) for i in range(3))
    # AzureBlobStore's block writes hand the SDK base64 of "<16 hex>-<6 digits>": the same length, so a failed
    # attempt of either path leaves blocks the other can live with.
    stores_own = base64.b64encode(f"{'0' * 16}-{0:06d}".encode()).decode()
    assert len(ids[0]) == len(stores_own)


# -- the S3 side ------------------------------------------------------------------------------------------------


def test_a_presigned_get_is_sigv4_for_the_prefixed_key_and_its_version(s3_client: Any) -> None:
    store = S3Store(s3_client, "dr-source", "backups/")
    url = urlsplit(store.presigned_get("dir/a b.bin", 900, version_id="3HL4kqtJlcpXroDTDmJ"))
    query = parse_qs(url.query)
    assert unquote(url.path).endswith("/backups/dir/a b.bin")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]  # botocore would pick SigV2 in eu-west-1
    assert query["X-Amz-Expires"] == ["900"]
    assert query["versionId"] == ["3HL4kqtJlcpXroDTDmJ"]
    assert query["X-Amz-Credential"][0].startswith(ACCESS_KEY + "/")
    with pytest.raises(ValueError, match="1 to 604800"):
        store.presigned_get("k", 604_801)


CHECKSUMS = {
    "full object": (
        {"ChecksumSHA256": "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=", "ChecksumType": "FULL_OBJECT"},
        True,
    ),
    "composite": (
        {"ChecksumSHA256": "knZjev1o11nOZP5rLpfOudBGaRRfArhZsonsCFiotz8=-1", "ChecksumType": "COMPOSITE"},
        False,
    ),
    "composite, no type": ({"ChecksumSHA256": "knZjev1o11nOZP5rLpfOudBGaRRfArhZsonsCFiotz8=-1"}, False),
    "none": ({}, False),
}


@pytest.mark.parametrize(("fields", "full"), CHECKSUMS.values(), ids=CHECKSUMS)
def test_only_a_full_object_checksum_is_the_stored_sha256(s3_client: Any, fields: dict[str, str], full: bool) -> None:
    store = S3Store(s3_client, "dr-source", "backups/")
    answer = {"ContentLength": 11, "LastModified": datetime(2026, 1, 1, tzinfo=UTC), "ETag": '"e"', **fields}
    with Stubber(s3_client) as stub:
        stub.add_response("head_object", answer, {"Bucket": "dr-source", "Key": "backups/k", "ChecksumMode": "ENABLED"})
        got = store.stat("k").hashes.get("sha256")
    expected = base64.b64decode(fields["ChecksumSHA256"]).hex() if full else None
    assert got == expected
    if full:
        assert got == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"  # sha256(b"hello world")
