"""The lean S3 read path against the SDK path on the same LocalStack bucket: same listings, object info, bytes
and error classes. What LocalStack cannot do (check signatures, corrupt bytes) is played by a small local
HTTP server that checks signatures with botocore's signer and serves chosen checksum headers."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket
import threading
import zlib
from base64 import b64encode
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

import pytest
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from orchestrator.errors import (
    AuthError,
    DrError,
    ExitCode,
    IntegrityError,
    InvalidInput,
    NotFound,
    Permanent,
    Transient,
)
from orchestrator.providers.factory import StoreFactory
from orchestrator.providers.lean_http import CHUNK
from orchestrator.providers.memory import MemoryStore
from orchestrator.providers.s3 import S3Store
from orchestrator.providers.s3_lean import LeanS3Client, _full_crc32
from orchestrator.providers.sigv4 import StaticCredentials
from orchestrator.retry import NO_RETRY, RetryPolicy
from tests.support.backup import backup_env, cli_points, cli_restore, run_json
from tests.support.cli import assert_one_line_error, drctl

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FAST = RetryPolicy(attempts=2, initial_wait_s=0.01, max_wait_s=0.05)
# LocalStack accepts any secret, so a distinctive one can be used throughout and searched for in messages.
SECRET = "sEcReT-9f3b2c7a-never-in-messages"
BIG = os.urandom(3 * 1024 * 1024 + 17)
CRC_DATA = os.urandom(2 * CHUNK + 123)
SHA_DATA = b"sha-256 checked\n" * 64


def _crc_header(data: bytes) -> str:
    """S3's x-amz-checksum-crc32 value, computed here rather than with the code under test."""
    return b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


CRC_BODY = os.urandom(2 * CHUNK + 4321)
WRONG_CRC = _crc_header(CRC_BODY + b"x")


@dataclass(frozen=True)
class Seed:
    data: bytes
    put: Mapping[str, Any] = field(default_factory=dict)


SEEDS: dict[str, Seed] = {
    "plain.txt": Seed(b"hello, lean world\n"),
    "dir with space/file name.txt": Seed(b"spaces " * 100),
    "données/日本語/ключ-€.bin": Seed("unicodé bytes ✓".encode()),
    "a+b/c+d=e.txt": Seed(b"plus and equals"),
    "100%/lit%20eral%.txt": Seed(b"percent signs"),
    "it's/(draft)!/v1~.txt": Seed(b"sub-delims and tilde"),
    "deep/a/b/c/d/e/f.txt": Seed(b"nested"),
    "empty": Seed(b""),
    "big.bin": Seed(BIG),
    "crc32.bin": Seed(CRC_DATA, {"ChecksumAlgorithm": "CRC32"}),
    "sha256.bin": Seed(SHA_DATA, {"ChecksumAlgorithm": "SHA256"}),
    "meta.txt": Seed(b"with metadata", {"Metadata": {"owner": "ops", "purpose": "dr drill", "n": "1"}}),
}


def _env(lab_env: Mapping[str, str], **overrides: str) -> dict[str, str]:
    return {**lab_env, "AWS_SECRET_ACCESS_KEY": SECRET, **overrides}


def _open(env: Mapping[str, str], location: str, *, lean: bool, retry: RetryPolicy = FAST) -> S3Store:
    store = StoreFactory(env, retry=retry, lean=lean).open(location)
    assert isinstance(store, S3Store)
    return store


def _sdk_client(env: Mapping[str, str]) -> S3Client:
    return StoreFactory(env, lean=False).s3_client()


def _read(store: S3Store, key: str, start: int = 0, length: int | None = None) -> tuple[bytes, str | None]:
    with store.open_read(key, start, length) as reader:
        return reader.read(), reader.content_md5


def _assert_one_clean_line(err: DrError, *fragments: str) -> None:
    text = str(err)
    assert text
    assert "\n" not in text
    assert SECRET not in text
    for fragment in fragments:
        assert fragment in text


@pytest.fixture
def seeded(lab_env: dict[str, str], s3_bucket: str) -> str:
    client = _sdk_client(_env(lab_env))
    for key, seed in SEEDS.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=seed.data, **seed.put)
    return s3_bucket


@pytest.fixture
def both(lab_env: dict[str, str], seeded: str) -> tuple[S3Store, S3Store]:
    lean = _open(_env(lab_env), f"s3://{seeded}/", lean=True)
    sdk = _open(_env(lab_env), f"s3://{seeded}/", lean=False)
    # Each path must really be the one it claims, or the comparisons below compare the SDK with itself.
    assert lean._lean is not None
    assert sdk._lean is None
    return lean, sdk


# -- same answers ---------------------------------------------------------------------------------------------


def test_listing_is_identical(both: tuple[S3Store, S3Store]) -> None:
    lean, sdk = both
    lean_listing, sdk_listing = list(lean.list()), list(sdk.list())
    assert lean_listing == sdk_listing
    assert [(o.key, o.size) for o in lean_listing] == sorted((k, len(s.data)) for k, s in SEEDS.items())
    assert all(o.etag for o in lean_listing)
    assert [o.key for o in lean.list("dir with space/")] == ["dir with space/file name.txt"]
    assert list(lean.list("données/")) == list(sdk.list("données/")) != []
    assert list(lean.list("a+b/")) == list(sdk.list("a+b/")) != []
    assert list(lean.list("no-such-prefix/")) == []
    # Reading stayed on the lean client: boto3 was never needed.
    assert not lean._sdk.made


@pytest.mark.parametrize("key", list(SEEDS))
def test_stat_is_identical(both: tuple[S3Store, S3Store], key: str) -> None:
    lean, sdk = both
    info = lean.stat(key)
    assert info == sdk.stat(key)
    assert info.key == key
    assert info.size == len(SEEDS[key].data)
    assert info.metadata == dict(SEEDS[key].put.get("Metadata", {}))
    expected_hashes = {"sha256": hashlib.sha256(SHA_DATA).hexdigest()} if key == "sha256.bin" else {}
    assert dict(info.hashes) == expected_hashes
    assert not lean._sdk.made


@pytest.mark.parametrize("key", list(SEEDS))
def test_reads_are_identical(both: tuple[S3Store, S3Store], key: str) -> None:
    lean, sdk = both
    data = SEEDS[key].data
    ranges: list[tuple[int, int | None]] = [(0, None)]
    if data:
        ranges += [(0, 1), (1, 3), (len(data) - 1, None), (len(data) // 2, None), (0, len(data)), (0, 0)]
    if len(data) > CHUNK:
        ranges += [(CHUNK - 5, 10), (0, CHUNK + 1), (CHUNK, CHUNK)]
    for start, length in ranges:
        got, md5 = _read(lean, key, start, length)
        assert (got, md5) == _read(sdk, key, start, length), (start, length)
        assert got == data[start : None if length is None else start + length], (start, length)
        whole = start == 0 and length is None
        assert md5 == (hashlib.md5(data).hexdigest() if whole else None), (start, length)
    assert not lean._sdk.made


def test_crc32_object_is_read_with_its_checksum(lab_env: dict[str, str], seeded: str) -> None:
    # The CRC comparison on GET only means something if LocalStack reports the object's full CRC32.
    store = _open(_env(lab_env), f"s3://{seeded}/", lean=True)
    assert store._lean is not None
    headers, chunks, close = store._lean.get_object(seeded, "crc32.bin", None, "crc32.bin")
    try:
        assert headers.get("x-amz-checksum-crc32") == _crc_header(CRC_DATA)
        assert headers.get("x-amz-checksum-type", "FULL_OBJECT") == "FULL_OBJECT"
        assert b"".join(chunks) == CRC_DATA
    finally:
        close()


def test_listing_over_many_pages(lab_env: dict[str, str], s3_bucket: str) -> None:
    # No spaces in these keys: LocalStack 4.13 repeats a page when its continuation key has one.
    keys = [f"many/k-{i:05d}" for i in range(1005)]
    client = _sdk_client(_env(lab_env))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=s3_bucket, Key=k, Body=k.encode()), [*keys, "many0", "m"]))
    lean = _open(_env(lab_env), f"s3://{s3_bucket}/many/", lean=True)
    sdk = _open(_env(lab_env), f"s3://{s3_bucket}/many/", lean=False)
    assert lean._lean is not None
    pages: list[str | None] = []
    page = lean._lean.list_page

    def counting(bucket: str, prefix: str, token: str | None) -> bytes:
        pages.append(token)
        return page(bucket, prefix, token)

    lean._lean.list_page = counting  # type: ignore[method-assign]
    listing = list(lean.list())
    assert [o.key for o in listing] == [k.removeprefix("many/") for k in keys]
    assert all(o.size == len(k) for o, k in zip(listing, keys, strict=True))
    assert listing == list(sdk.list())
    assert len(pages) >= 2
    assert pages[0] is None
    assert all(pages[1:])


# -- same errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "sdk"])
def test_missing_bucket_is_not_found(lab_env: dict[str, str], lean: bool) -> None:
    store = _open(_env(lab_env), "s3://t-no-such-bucket-5d1c0e9a/", lean=lean)
    with pytest.raises(NotFound) as err:
        store.ensure_root()
    _assert_one_clean_line(err.value, "s3://t-no-such-bucket-5d1c0e9a", "does not exist")
    with pytest.raises(NotFound) as err:
        list(store.list())
    _assert_one_clean_line(err.value, "t-no-such-bucket-5d1c0e9a", "does not exist")


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "sdk"])
def test_missing_key_is_not_found(lab_env: dict[str, str], s3_bucket: str, lean: bool) -> None:
    store = _open(_env(lab_env), f"s3://{s3_bucket}/p/", lean=lean)
    store.ensure_root()
    with pytest.raises(NotFound) as err:
        store.stat("no such key+€")
    _assert_one_clean_line(err.value, f"s3://{s3_bucket}/p/no such key+€", "does not exist")
    with pytest.raises(NotFound) as err:
        _read(store, "no such key+€")
    _assert_one_clean_line(err.value, f"s3://{s3_bucket}/p/no such key+€", "does not exist")
    with pytest.raises(NotFound):
        _read(store, "no such key+€", 5, 10)


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "sdk"])
def test_range_past_the_end_is_refused_alike(both: tuple[S3Store, S3Store], lean: bool) -> None:
    store = both[0] if lean else both[1]
    with pytest.raises(Permanent) as err:
        _read(store, "plain.txt", len(SEEDS["plain.txt"].data) + 10)
    assert type(err.value) is Permanent
    _assert_one_clean_line(err.value, "plain.txt", "InvalidRange")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "sdk"])
def test_unreachable_endpoint_is_transient(lean: bool) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET}
    store = _open(env, "s3://some-bucket/p/", lean=lean, retry=NO_RETRY)
    assert (store._lean is not None) is lean
    calls: list[Callable[[], object]] = [
        store.ensure_root,
        lambda: list(store.list()),
        lambda: store.stat("k"),
        lambda: _read(store, "k"),
    ]
    for call in calls:
        with pytest.raises(Transient) as err:
            call()
        _assert_one_clean_line(err.value, endpoint, "cannot reach")


# -- the connection pool ----------------------------------------------------------------------------------------


def test_get_closed_early_leaves_the_pool_usable(both: tuple[S3Store, S3Store]) -> None:
    lean, _ = both
    for _ in range(3):
        # Stopping a few bytes into a 3 MiB body leaves most of it unread on the connection; a reused
        # connection with those bytes still on it would answer the next request with garbage.
        with lean.open_read("big.bin") as reader:
            assert reader.read(100) == BIG[:100]
        assert _read(lean, "plain.txt")[0] == SEEDS["plain.txt"].data
        assert lean.stat("meta.txt").metadata == SEEDS["meta.txt"].put["Metadata"]
        assert _read(lean, "big.bin", 7, 1000)[0] == BIG[7:1007]
    assert _read(lean, "big.bin")[0] == BIG


def test_many_threads_share_the_lean_client(both: tuple[S3Store, S3Store]) -> None:
    lean, _ = both

    def read(key: str) -> bytes:
        return _read(lean, key)[0]

    keys = [k for k in SEEDS for _ in range(4)]
    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(read, keys)) == [SEEDS[k].data for k in keys]


# -- a local stand-in for what LocalStack cannot do ----------------------------------------------------------


@dataclass
class Served:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class FakeS3(ThreadingHTTPServer):
    """Serves ``objects`` at ``/<bucket>/<key>`` and, at ``/<bucket>``, a listing of them (``listed``) or an
    empty one. With ``secret`` set, a request whose signature botocore's signer does not reproduce gets S3's
    403 SignatureDoesNotMatch."""

    daemon_threads = True

    def __init__(self, objects: Mapping[str, Served], secret: str | None = None, listed: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _FakeS3Handler)
        self.objects = dict(objects)
        self.secret = secret
        self.listed = listed
        self.requests: list[tuple[str, str, bool]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, ?"
    r"SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<signature>[0-9a-f]{64})"
)


def _listing(objects: Mapping[str, Served]) -> bytes:
    contents = "".join(
        f"<Contents><Key>{quote(key)}</Key><LastModified>2026-11-26T10:00:00.000Z</LastModified>"
        f"<ETag>{escape(served.headers.get('ETag', ''))}</ETag><Size>{len(served.body)}</Size></Contents>"
        for key, served in sorted(objects.items())
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>b</Name><Prefix></Prefix><KeyCount>{len(objects)}</KeyCount><MaxKeys>1000</MaxKeys>"
        f"<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
    ).encode()


_BAD_SIGNATURE = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>'
    b"<Message>The request signature we calculated does not match the signature you provided.</Message></Error>"
)


class _FakeS3Handler(BaseHTTPRequestHandler):
    server: FakeS3
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest's output to the tests' own

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _signature_ok(self, secret: str) -> bool:
        match = _AUTH.fullmatch(self.headers.get("Authorization", ""))
        if match is None:
            return False
        parts = urlsplit(self.path)
        request = AWSRequest(
            method=self.command,
            url=f"http://{self.headers['host']}{parts.path}",
            params=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name: self.headers[name] or "" for name in match["signed"].split(";")},
        )
        request.context["timestamp"] = self.headers.get("x-amz-date", "")
        signer = S3SigV4Auth(Credentials(match["key"], secret), match["service"], match["region"])
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        return hmac.compare_digest(expected, match["signature"])

    def _answer(self, *, send_body: bool) -> None:
        path = urlsplit(self.path).path
        ok = self.server.secret is None or self._signature_ok(self.server.secret)
        self.server.requests.append((self.command, self.path, ok))
        _, _, key = path.lstrip("/").partition("/")
        listing = _listing(self.server.objects if self.server.listed else {})
        served = self.server.objects.get(unquote(key)) if key else Served(listing)
        status, headers, body = 200, {}, b""
        if not ok:
            status, body = 403, _BAD_SIGNATURE
        elif served is None:
            status, body = 404, b"<Error><Code>NoSuchKey</Code></Error>"
        else:
            headers, body = dict(served.headers), served.body
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if match:
                end = int(match[2]) + 1 if match[2] else len(body)
                status, body = 206, body[int(match[1]) : end]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # S3 sends no body with a HEAD answer, errors included.
        if send_body:
            self.wfile.write(body)


@pytest.fixture
def fake_s3() -> Iterator[Callable[..., FakeS3]]:
    servers: list[FakeS3] = []

    def start(objects: Mapping[str, Served], secret: str | None = None, listed: bool = False) -> FakeS3:
        # Bound and listening once constructed: requests queue in the backlog until serve_forever runs.
        server = FakeS3(objects, secret, listed)
        threading.Thread(target=server.serve_forever, name="fake-s3", daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _lean_client(endpoint: str) -> LeanS3Client:
    return LeanS3Client(endpoint, "us-east-1", StaticCredentials("AKIDEXAMPLE", SECRET), urllib3.PoolManager())


def _no_sdk() -> S3Client:
    raise AssertionError("the read path must not need boto3")


def test_crc32_mismatch_is_an_integrity_error(fake_s3: Callable[..., FakeS3]) -> None:
    server = fake_s3(
        {
            "good": Served(CRC_BODY, {"x-amz-checksum-crc32": _crc_header(CRC_BODY)}),
            "good-typed": Served(
                CRC_BODY, {"x-amz-checksum-crc32": _crc_header(CRC_BODY), "x-amz-checksum-type": "FULL_OBJECT"}
            ),
            "bad": Served(CRC_BODY, {"x-amz-checksum-crc32": WRONG_CRC}),
            "bad-typed": Served(CRC_BODY, {"x-amz-checksum-crc32": WRONG_CRC, "x-amz-checksum-type": "FULL_OBJECT"}),
            "composite": Served(CRC_BODY, {"x-amz-checksum-crc32": WRONG_CRC, "x-amz-checksum-type": "COMPOSITE"}),
            "composite-suffix": Served(CRC_BODY, {"x-amz-checksum-crc32": WRONG_CRC[:-2] + "-3"}),
        }
    )
    client = _lean_client(server.endpoint)
    store = S3Store(_no_sdk, "bkt", "", retry=NO_RETRY, lean=client, endpoint=server.endpoint)
    # The header is decoded as S3 encodes it.
    assert _full_crc32({"x-amz-checksum-crc32": _crc_header(CRC_BODY)}) == zlib.crc32(CRC_BODY)

    for key in ("good", "good-typed", "composite", "composite-suffix"):
        assert _read(store, key)[0] == CRC_BODY, key
    for key in ("bad", "bad-typed"):
        with pytest.raises(IntegrityError) as err:
            _read(store, key)
        _assert_one_clean_line(err.value, f"s3://bkt/{key}", "CRC32")
        # A range is not the whole object, so the whole object's checksum says nothing about it.
        assert _read(store, key, 10, CHUNK + 5)[0] == CRC_BODY[10 : CHUNK + 15]

    # Straight from the client too: the error comes as the body ends, on every path that reads it through.
    _, chunks, close = client.get_object("bkt", "bad", None, "s3://bkt/bad")
    try:
        with pytest.raises(IntegrityError):
            b"".join(chunks)
    finally:
        close()


def test_crc32_mismatch_stops_a_write_before_it_commits(fake_s3: Callable[..., FakeS3]) -> None:
    # The check runs when the reader is asked past the last chunk, which every store does before it commits.
    server = fake_s3({"bad": Served(CRC_BODY, {"x-amz-checksum-crc32": WRONG_CRC})})
    store = S3Store(_no_sdk, "bkt", "", retry=NO_RETRY, lean=_lean_client(server.endpoint), endpoint=server.endpoint)
    target = MemoryStore()
    with store.open_read("bad") as reader, pytest.raises(IntegrityError):
        target.write("copy", reader)
    assert list(target.list()) == []


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "sdk"])
def test_wrong_secret_is_an_auth_error(fake_s3: Callable[..., FakeS3], lean: bool) -> None:
    server = fake_s3({"k": Served(b"secret stuff")}, secret=SECRET)
    good = _open(
        {"AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET},
        "s3://bkt/",
        lean=lean,
        retry=NO_RETRY,
    )
    assert (good._lean is not None) is lean
    # The right secret is accepted by botocore's verdict, so the refusals below are about the secret alone.
    assert list(good.list()) == []
    assert _read(good, "k")[0] == b"secret stuff"

    wrong_secret = "wRoNg-" + SECRET
    env = {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": wrong_secret,
    }
    wrong = _open(env, "s3://bkt/", lean=lean, retry=NO_RETRY)
    with pytest.raises(AuthError) as err:
        list(wrong.list())
    _assert_one_clean_line(err.value, "s3://bkt/", "SignatureDoesNotMatch")
    assert wrong_secret not in str(err.value)
    with pytest.raises(AuthError) as err:
        _read(wrong, "k")
    _assert_one_clean_line(err.value, "s3://bkt/k", "SignatureDoesNotMatch")
    assert wrong_secret not in str(err.value)
    assert [ok for _, _, ok in server.requests] == [True, True, False, False]


def test_an_etag_that_only_looks_like_an_md5_fails_a_copy_with_the_fix_and_the_switch_copies_it(
    fake_s3: Callable[..., FakeS3], lab_env: dict[str, str], az_container: str, tmp_path: Path
) -> None:
    """An S3-compatible gateway that encrypts or compresses may give a single-part object a 32-hex ETag that is
    not its MD5. Taken as one, the copy must fail cleanly and say how to turn that off; turned off, it copies."""
    data = os.urandom(3_000)
    not_md5 = hashlib.sha256(data).hexdigest()[:32]
    server = fake_s3({"k.bin": Served(data, {"ETag": f'"{not_md5}"'})}, listed=True)
    env = backup_env(lab_env, tmp_path / "state", AWS_ENDPOINT_URL=server.endpoint)
    set_url = f"az://{az_container}/set/"

    refused = drctl("backup", "copy", "s3://bkt/", set_url, "--mode", "full", env=env)
    assert_one_line_error(refused, ExitCode.INTEGRITY, "k.bin", "DRCTL_S3_ETAG_MD5=off")
    assert cli_points(set_url, env) == []

    switched = {**env, "DRCTL_S3_ETAG_MD5": "off"}
    copied = run_json("backup", "copy", "s3://bkt/", set_url, "--mode", "full", "--json", env=switched)
    assert copied["bytes_transferred"] == len(data)
    target = tmp_path / "restored"
    cli_restore(set_url, target, switched)
    assert (target / "k.bin").read_bytes() == data


@pytest.mark.parametrize(("setting", "vouched"), [("on", True), ("off", False), ("OFF", False), ("0", False)])
def test_the_etag_md5_setting_decides_whether_a_read_vouches_for_an_md5(
    fake_s3: Callable[..., FakeS3], setting: str, vouched: bool
) -> None:
    data = b"plain bytes"
    server = fake_s3({"k": Served(data, {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})})
    env = {"AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET}
    store = StoreFactory({**env, "DRCTL_S3_ETAG_MD5": setting}).open("s3://bkt/")
    with store.open_read("k") as reader:
        assert reader.read() == data
        assert reader.content_md5 == (hashlib.md5(data).hexdigest() if vouched else None)


def test_an_unknown_etag_md5_setting_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="DRCTL_S3_ETAG_MD5 must be on or off"):
        StoreFactory({"DRCTL_S3_ETAG_MD5": "maybe"}).open("s3://bkt/")
