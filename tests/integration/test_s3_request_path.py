"""The S3 request path (boto3, whatever the credential) on LocalStack and on a local stand-in that checks
signatures the way S3 does: keys sent exactly as named, listings parsed as botocore parses them, checksums
checked, region redirects followed, and every failure one clean line."""

from __future__ import annotations

import hashlib
import os
import zlib
from base64 import b64encode
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

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
from orchestrator.providers.memory import MemoryStore
from orchestrator.providers.s3 import S3Store
from orchestrator.retry import NO_RETRY, RetryPolicy
from tests.support.backup import backup_env, cli_points, cli_restore, run_json
from tests.support.cli import assert_one_line_error, drctl
from tests.support.fake_s3 import FakeS3, Served
from tests.support.ports import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FAST = RetryPolicy(attempts=2, initial_wait_s=0.01, max_wait_s=0.05)
# LocalStack accepts any secret, so a distinctive one can be used throughout and searched for in messages.
SECRET = "sEcReT-9f3b2c7a-never-in-messages"
MiB = 1024 * 1024
BIG = os.urandom(3 * MiB + 17)
CRC_DATA = os.urandom(2 * MiB + 123)
SHA_DATA = b"sha-256 checked\n" * 64


def _crc_header(data: bytes) -> str:
    """S3's x-amz-checksum-crc32 value, computed here rather than with the code under test."""
    return b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


CRC_BODY = os.urandom(2 * MiB + 4321)
WRONG_CRC = _crc_header(CRC_BODY + b"x")


@dataclass(frozen=True)
class Seed:
    data: bytes
    put: Mapping[str, Any] = field(default_factory=dict)


SEEDS: dict[str, Seed] = {
    "plain.txt": Seed(b"hello, world\n"),
    "dir with space/file name.txt": Seed(b"spaces " * 100),
    "données/日本語/ключ-€.bin": Seed("unicodé bytes ✓".encode()),
    "a+b/c+d=e.txt": Seed(b"plus and equals"),
    "100%/lit%20eral%.txt": Seed(b"percent signs"),
    "it's/(draft)!/v1~.txt": Seed(b"sub-delims and tilde"),
    # Dot segments are part of an S3 key: sent as they are, never normalised away.
    "a/./b.txt": Seed(b"a single dot segment"),
    "a/../c.txt": Seed(b"a double dot segment"),
    "..": Seed(b"a key that is only dots"),
    "trailing/": Seed(b"a key ending in a slash"),
    "deep/a/b/c/d/e/f.txt": Seed(b"nested"),
    "empty": Seed(b""),
    "big.bin": Seed(BIG),
    "crc32.bin": Seed(CRC_DATA, {"ChecksumAlgorithm": "CRC32"}),
    "sha256.bin": Seed(SHA_DATA, {"ChecksumAlgorithm": "SHA256"}),
    "meta.txt": Seed(b"with metadata", {"Metadata": {"owner": "ops", "purpose": "dr drill", "n": "1"}}),
}


def _env(lab_env: Mapping[str, str], **overrides: str) -> dict[str, str]:
    return {**lab_env, "AWS_SECRET_ACCESS_KEY": SECRET, **overrides}


def _open(env: Mapping[str, str], location: str, *, retry: RetryPolicy = FAST) -> S3Store:
    store = StoreFactory(env, retry=retry).open(location)
    assert isinstance(store, S3Store)
    return store


def _client(env: Mapping[str, str]) -> S3Client:
    return StoreFactory(env).s3_client()


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
    client = _client(_env(lab_env))
    for key, seed in SEEDS.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=seed.data, **seed.put)
    return s3_bucket


@pytest.fixture
def store(lab_env: dict[str, str], seeded: str) -> S3Store:
    return _open(_env(lab_env), f"s3://{seeded}/")


# -- keys as named ----------------------------------------------------------------------------------------------


def test_the_listing_is_botocores_own_parse_of_the_same_pages(store: S3Store, seeded: str) -> None:
    """drctl parses listing pages itself (botocore's generic parser costs a second per ten thousand keys); the
    result must be what botocore's paginator makes of the same bucket."""
    paginator = store._client.get_paginator("list_objects_v2")
    expected = {o["Key"]: o for page in paginator.paginate(Bucket=seeded) for o in page.get("Contents", [])}
    listing = {o.key: o for o in store.list()}
    assert sorted(listing) == sorted(SEEDS) == sorted(expected)
    for key, info in listing.items():
        assert info.size == expected[key]["Size"] == len(SEEDS[key].data), key
        assert info.etag == expected[key]["ETag"].strip('"'), key
        assert info.modified == expected[key]["LastModified"], key


@pytest.mark.parametrize("key", sorted(SEEDS))
def test_every_key_reads_back_its_own_bytes(store: S3Store, key: str) -> None:
    data, md5 = _read(store, key)
    assert data == SEEDS[key].data
    assert store.stat(key).size == len(SEEDS[key].data)
    if md5 is not None:
        assert md5 == hashlib.md5(data).hexdigest()


def test_object_info_and_ranges(store: S3Store) -> None:
    meta = store.stat("meta.txt")
    assert meta.metadata == SEEDS["meta.txt"].put["Metadata"]
    sha = store.stat("sha256.bin")
    assert sha.hashes == {"sha256": hashlib.sha256(SHA_DATA).hexdigest()}
    assert _read(store, "big.bin", 7, 1000)[0] == BIG[7:1007]
    assert _read(store, "big.bin", len(BIG) - 5)[0] == BIG[-5:]
    # A range is not the whole object: nothing vouches for its MD5.
    assert _read(store, "plain.txt", 1, 3)[1] is None


def test_listing_over_many_pages(lab_env: dict[str, str], s3_bucket: str) -> None:
    # No spaces in these keys: LocalStack 4.13 repeats a page when its continuation key has one.
    keys = [f"many/k-{i:05d}" for i in range(1005)]
    client = _client(_env(lab_env))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=s3_bucket, Key=k, Body=k.encode()), [*keys, "many0", "m"]))
    store = _open(_env(lab_env), f"s3://{s3_bucket}/many/")
    tokens: list[str | None] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        tokens.append(params.get("ContinuationToken"))

    store._client.meta.events.register("provide-client-params.s3.ListObjectsV2", seen)
    try:
        listing = list(store.list())
    finally:
        store._client.meta.events.unregister("provide-client-params.s3.ListObjectsV2", seen)
    assert [o.key for o in listing] == [k.removeprefix("many/") for k in keys]
    assert all(o.size == len(k) for o, k in zip(listing, keys, strict=True))
    assert len(tokens) >= 2
    assert tokens[0] is None
    assert all(tokens[1:])


# -- errors ------------------------------------------------------------------------------------------------------


def test_missing_bucket_is_not_found(lab_env: dict[str, str]) -> None:
    store = _open(_env(lab_env), "s3://t-no-such-bucket-5d1c0e9a/")
    with pytest.raises(NotFound) as err:
        store.ensure_root()
    _assert_one_clean_line(err.value, "s3://t-no-such-bucket-5d1c0e9a", "does not exist")
    with pytest.raises(NotFound) as err:
        list(store.list())
    _assert_one_clean_line(err.value, "t-no-such-bucket-5d1c0e9a", "does not exist")


def test_missing_key_is_not_found(lab_env: dict[str, str], s3_bucket: str) -> None:
    store = _open(_env(lab_env), f"s3://{s3_bucket}/p/")
    store.ensure_root()
    with pytest.raises(NotFound) as err:
        store.stat("no such key+€")
    _assert_one_clean_line(err.value, f"s3://{s3_bucket}/p/no such key+€", "does not exist")
    with pytest.raises(NotFound) as err:
        _read(store, "no such key+€")
    _assert_one_clean_line(err.value, f"s3://{s3_bucket}/p/no such key+€", "does not exist")
    with pytest.raises(NotFound):
        _read(store, "no such key+€", 5, 10)


def test_range_past_the_end_is_refused(store: S3Store) -> None:
    with pytest.raises(Permanent) as err:
        _read(store, "plain.txt", len(SEEDS["plain.txt"].data) + 10)
    assert type(err.value) is Permanent
    _assert_one_clean_line(err.value, "plain.txt", "InvalidRange")


def test_unreachable_endpoint_is_transient() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET}
    store = _open(env, "s3://some-bucket/p/", retry=NO_RETRY)
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


def test_get_closed_early_leaves_the_pool_usable(store: S3Store) -> None:
    for _ in range(3):
        # Stopping a few bytes into a 3 MiB body leaves most of it unread on the connection; a reused
        # connection with those bytes still on it would answer the next request with garbage.
        with store.open_read("big.bin") as reader:
            assert reader.read(100) == BIG[:100]
        assert _read(store, "plain.txt")[0] == SEEDS["plain.txt"].data
        assert store.stat("meta.txt").metadata == SEEDS["meta.txt"].put["Metadata"]
        assert _read(store, "big.bin", 7, 1000)[0] == BIG[7:1007]
    assert _read(store, "big.bin")[0] == BIG


def test_many_threads_share_one_client(store: S3Store) -> None:
    def read(key: str) -> bytes:
        return _read(store, key)[0]

    keys = [k for k in SEEDS for _ in range(4)]
    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(read, keys)) == [SEEDS[k].data for k in keys]


# -- against a server that checks signatures ----------------------------------------------------------------------


def _fake_env(server: FakeS3, **overrides: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        **overrides,
    }


def test_dot_segments_are_sent_as_signed_and_never_reach_another_bucket(fake_s3: Callable[..., FakeS3]) -> None:
    """urllib3 removes dot segments from a URL it is handed whole; S3 keys keep them. A normalised path would
    fail its signature on S3, and on a server that checks none, ``../other/k`` would read another bucket."""
    server = fake_s3({"x/a/../c.txt": Served(b"dots kept"), "x/./d": Served(b"one dot")}, secret=SECRET)
    store = _open(_fake_env(server), "s3://bkt/x/", retry=NO_RETRY)
    assert _read(store, "a/../c.txt")[0] == b"dots kept"
    assert _read(store, "./d")[0] == b"one dot"
    with pytest.raises(NotFound):
        _read(store, "../../other/k")
    assert [(r.path, r.signature_ok) for r in server.requests] == [
        ("/bkt/x/a/../c.txt", True),
        ("/bkt/x/./d", True),
        ("/bkt/x/../../other/k", True),
    ]


def test_a_missing_object_leaves_the_connection_ready_for_the_next_request(fake_s3: Callable[..., FakeS3]) -> None:
    """A HEAD answered 404 must not leave its connection mid-response: the next request on it would fail and
    spend a retry. With no retries allowed, every call below has exactly one request."""
    server = fake_s3({"k": Served(b"present")}, secret=SECRET)
    store = _open(_fake_env(server), "s3://bkt/", retry=NO_RETRY)
    for _ in range(3):
        with pytest.raises(NotFound):
            store.stat("missing")
        assert store.stat("k").size == len(b"present")
        with pytest.raises(NotFound):
            _read(store, "missing")
        assert _read(store, "k")[0] == b"present"
    assert [(r.method, r.path) for r in server.requests] == [
        ("HEAD", "/bkt/missing"),
        ("HEAD", "/bkt/k"),
        ("GET", "/bkt/missing"),
        ("GET", "/bkt/k"),
    ] * 3


@pytest.mark.parametrize("redirect", ["301", "400", "307"])
def test_a_bucket_in_another_region_is_followed_once_and_then_asked_directly(
    fake_s3: Callable[..., FakeS3], redirect: str
) -> None:
    """S3 names a bucket's region in a 301 or 307 header, or in a 400 AuthorizationHeaderMalformed body only;
    each is followed by signing for that region, without spending a retry, and later requests sign for it
    straight away."""
    server = fake_s3(
        {"k": Served(b"elsewhere")}, secret=SECRET, listed=True, home_region="eu-west-1", redirect=redirect
    )
    store = _open(_fake_env(server), "s3://bkt/", retry=NO_RETRY)
    assert _read(store, "k")[0] == b"elsewhere"
    assert [o.key for o in store.list()] == ["k"]
    assert store.stat("k").size == len(b"elsewhere")
    regions = [r.region for r in server.requests]
    assert regions[0] == "us-east-1"
    assert regions[-2:] == ["eu-west-1", "eu-west-1"]
    assert all(r.signature_ok for r in server.requests)


def test_a_head_in_another_region_is_followed_too(fake_s3: Callable[..., FakeS3]) -> None:
    server = fake_s3({"k": Served(b"elsewhere")}, secret=SECRET, home_region="eu-west-1", redirect="400")
    store = _open(_fake_env(server), "s3://bkt/", retry=NO_RETRY)
    assert store.stat("k").size == len(b"elsewhere")
    with pytest.raises(NotFound):
        store.stat("missing")


def test_crc32_mismatch_is_an_integrity_error(fake_s3: Callable[..., FakeS3]) -> None:
    server = fake_s3(
        {
            "good": Served(CRC_BODY, {"x-amz-checksum-crc32": _crc_header(CRC_BODY)}),
            "good-typed": Served(
                CRC_BODY, {"x-amz-checksum-crc32": _crc_header(CRC_BODY), "x-amz-checksum-type": "FULL_OBJECT"}
            ),
            "bad": Served(CRC_BODY, {"x-amz-checksum-crc32": WRONG_CRC}),
            "bad-typed": Served(CRC_BODY, {"x-amz-checksum-crc32": WRONG_CRC, "x-amz-checksum-type": "FULL_OBJECT"}),
            "composite-suffix": Served(CRC_BODY, {"x-amz-checksum-crc32": WRONG_CRC[:-2] + "-3"}),
        }
    )
    store = _open(_fake_env(server), "s3://bkt/", retry=NO_RETRY)
    for key in ("good", "good-typed", "composite-suffix"):
        assert _read(store, key)[0] == CRC_BODY, key
    for key in ("bad", "bad-typed"):
        with pytest.raises(IntegrityError) as err:
            _read(store, key)
        _assert_one_clean_line(err.value, f"s3://bkt/{key}", "checksum")


def test_crc32_mismatch_stops_a_write_before_it_commits(fake_s3: Callable[..., FakeS3]) -> None:
    # The check runs as the body ends, which every store reads to before it commits.
    server = fake_s3({"bad": Served(CRC_BODY, {"x-amz-checksum-crc32": WRONG_CRC})})
    store = _open(_fake_env(server), "s3://bkt/", retry=NO_RETRY)
    target = MemoryStore()
    with store.open_read("bad") as reader, pytest.raises(IntegrityError):
        target.write("copy", reader)
    assert list(target.list()) == []


def test_wrong_secret_is_an_auth_error(fake_s3: Callable[..., FakeS3]) -> None:
    server = fake_s3({"k": Served(b"secret stuff")}, secret=SECRET)
    good = _open(_fake_env(server), "s3://bkt/", retry=NO_RETRY)
    # The right secret is accepted by botocore's verdict, so the refusals below are about the secret alone.
    assert list(good.list()) == []
    assert _read(good, "k")[0] == b"secret stuff"

    wrong_secret = "wRoNg-" + SECRET
    wrong = _open(_fake_env(server, AWS_SECRET_ACCESS_KEY=wrong_secret), "s3://bkt/", retry=NO_RETRY)
    with pytest.raises(AuthError) as err:
        list(wrong.list())
    _assert_one_clean_line(err.value, "s3://bkt/", "SignatureDoesNotMatch")
    assert wrong_secret not in str(err.value)
    with pytest.raises(AuthError) as err:
        _read(wrong, "k")
    _assert_one_clean_line(err.value, "s3://bkt/k", "SignatureDoesNotMatch")
    assert wrong_secret not in str(err.value)
    assert [r.signature_ok for r in server.requests] == [True, True, False, False]


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
    store = StoreFactory(_fake_env(server, DRCTL_S3_ETAG_MD5=setting)).open("s3://bkt/")
    with store.open_read("k") as reader:
        assert reader.read() == data
        assert reader.content_md5 == (hashlib.md5(data).hexdigest() if vouched else None)


def test_an_unknown_etag_md5_setting_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="DRCTL_S3_ETAG_MD5 must be on or off"):
        StoreFactory({"DRCTL_S3_ETAG_MD5": "maybe"}).open("s3://bkt/")
