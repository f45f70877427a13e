"""One contract, every store: S3 on LocalStack, Azure Blob on Azurite, and the local filesystem.

Like rclone's fstests, the same cases run against each real backend; a provider passes or the suite is red.
"""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestrator.errors import NotFound
from orchestrator.providers.azure_blob import AzureBlobStore
from orchestrator.providers.base import ObjectStore, ServerSideCopy
from orchestrator.providers.factory import StoreFactory
from orchestrator.providers.local import LocalStore
from orchestrator.providers.s3 import S3Store
from tests.support.lab import RandomSource, sas_container_client, temporary_bucket, temporary_container

MiB = 1024 * 1024
StoreMaker = Callable[..., ObjectStore]
# Keys under a prefix, as in real use. No space here: LocalStack 4.13.1 restarts a listing from the top when
# the continuation key holds a space (real S3 does not); keys with spaces are still covered below.
ROOT_PREFIX = "root-prefix/"


# Every call goes through the SDKs. "azure" signs with the account's shared key (the lab's connection string),
# "azure-sas" with a container SAS, as a user given only a SAS would.
@pytest.fixture(params=["s3", "azure", "azure-sas", "local"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    """A factory for stores on one fresh, empty root per test; the root is removed afterwards."""
    if request.param == "local":
        yield lambda **kw: LocalStore(tmp_path / "root")
        return
    factory: StoreFactory = request.getfixturevalue("lab_factory")
    if request.param == "s3":
        with temporary_bucket(factory) as bucket:
            yield lambda **kw: S3Store(factory.s3_client, bucket, ROOT_PREFIX, retry=factory.retry, **kw)
        return
    service = factory.blob_service()
    with temporary_container(service) as container:
        client = service.get_container_client(container)
        if request.param == "azure-sas":
            client = sas_container_client(service, container)
        yield lambda **kw: AzureBlobStore(client, ROOT_PREFIX, retry=factory.retry, **kw)


@pytest.fixture
def store(make_store: StoreMaker) -> ObjectStore:
    return make_store()


def put(store: ObjectStore, key: str, data: bytes, **meta: str) -> None:
    store.write(key, io.BytesIO(data), metadata=meta)


def read_all(store: ObjectStore, key: str, start: int = 0, length: int | None = None) -> bytes:
    with store.open_read(key, start, length) as reader:
        return reader.read()


def test_empty_object_round_trips(store: ObjectStore) -> None:
    info = store.write("empty", io.BytesIO(b""))
    assert info.size == 0
    assert store.stat("empty").size == 0
    assert read_all(store, "empty") == b""
    assert [o.key for o in store.list()] == ["empty"]


@pytest.mark.parametrize(
    "key",
    ["with space/file name.txt", "ünïcödé/日本語/файл", "deep/" + "/".join(f"d{i}" for i in range(20)) + "/leaf"],
)
def test_awkward_keys_round_trip(store: ObjectStore, key: str) -> None:
    data = key.encode() * 3
    put(store, key, data)
    assert read_all(store, key) == data
    assert [o.key for o in store.list()] == [key]
    assert store.stat(key).size == len(data)


def test_large_object_goes_up_in_parts_with_bounded_memory(make_store: StoreMaker) -> None:
    part = 5 * MiB
    store = make_store(part_size=part, part_concurrency=2)
    source = RandomSource(64 * MiB)
    tracemalloc.start()
    try:
        store.write("big/object.bin", source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Parts in flight plus the one being read, and the SDKs' copies of them: far below the object's size.
    # A store that buffered the whole object would peak above 64 MiB.
    assert peak < 32 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"
    assert store.stat("big/object.bin").size == 64 * MiB
    digest = hashlib.sha256()
    with store.open_read("big/object.bin") as reader:
        while chunk := reader.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == source.sha256.hexdigest()


def test_failed_write_leaves_no_object(make_store: StoreMaker) -> None:
    part = 5 * MiB
    store = make_store(part_size=part, part_concurrency=2)
    with pytest.raises(ConnectionResetError):
        store.write("torn", RandomSource(40 * MiB, fail_after=3 * part))
    with pytest.raises(NotFound):
        store.stat("torn")
    assert list(store.list()) == []


def test_failed_overwrite_keeps_previous_object(make_store: StoreMaker) -> None:
    store = make_store(part_size=5 * MiB, part_concurrency=2)
    put(store, "keep", b"previous")
    with pytest.raises(ConnectionResetError):
        store.write("keep", RandomSource(20 * MiB, fail_after=6 * MiB))
    assert read_all(store, "keep") == b"previous"


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [(0, 10, b"0123456789"), (5, 3, b"567"), (20, None, b"KLMNOPQRSTUVWXYZ"), (30, 100, b"UVWXYZ"), (7, 0, b"")],
)
def test_ranged_reads(store: ObjectStore, start: int, length: int | None, expected: bytes) -> None:
    put(store, "alphabet", b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert read_all(store, "alphabet", start, length) == expected


def test_listing_pages_past_one_thousand_keys(store: ObjectStore) -> None:
    keys = [f"many/{i:05d}" for i in range(1_050)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: put(store, k, k.encode()), keys))
    put(store, "other/x", b"x")
    listed = list(store.list("many/"))
    assert [o.key for o in listed] == keys
    assert all(o.size == len(o.key) for o in listed)
    assert len(list(store.list())) == 1_051


def test_listing_reports_size_time_and_etag(store: ObjectStore) -> None:
    put(store, "a/1", b"one")
    put(store, "a/2", b"three")
    [one, two] = list(store.list("a/"))
    assert (one.key, one.size, two.key, two.size) == ("a/1", 3, "a/2", 5)
    assert one.etag
    assert two.etag
    assert one.etag != two.etag
    assert one.modified.tzinfo is not None


def test_prefix_is_a_string_prefix_not_a_directory(store: ObjectStore) -> None:
    for key in ("ab/1", "abc/2", "b/3"):
        put(store, key, b"x")
    assert [o.key for o in store.list("ab")] == ["ab/1", "abc/2"]
    assert [o.key for o in store.list("ab/")] == ["ab/1"]


def test_metadata_round_trip_and_replace(store: ObjectStore) -> None:
    put(store, "meta", b"data", sha256="abc", origin="s3")
    assert dict(store.stat("meta").metadata) == {"sha256": "abc", "origin": "s3"}
    store.set_metadata("meta", {"sha256": "def"})
    assert dict(store.stat("meta").metadata) == {"sha256": "def"}
    assert read_all(store, "meta") == b"data"


def test_missing_objects_raise_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        store.stat("nope")
    with pytest.raises(NotFound, match="does not exist"):
        read_all(store, "nope")
    with pytest.raises(NotFound):
        store.set_metadata("nope", {"a": "b"})


def test_overwrite_replaces_content(store: ObjectStore) -> None:
    put(store, "over", b"first version")
    put(store, "over", b"second")
    assert read_all(store, "over") == b"second"
    assert [(o.key, o.size) for o in store.list()] == [("over", 6)]


def test_delete_is_idempotent(store: ObjectStore) -> None:
    put(store, "gone/soon", b"x")
    store.delete("gone/soon")
    store.delete("gone/soon")
    assert list(store.list()) == []


def test_native_hashes_are_whole_object_hashes(store: ObjectStore) -> None:
    data = b"hash me" * 1000
    put(store, "h", data)
    hashes = store.stat("h").hashes
    assert set(hashes) <= store.native_hashes
    expected = {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()}
    for kind, value in hashes.items():
        assert value == expected[kind]


def test_server_side_copy_within_a_store(store: ObjectStore) -> None:
    if not isinstance(store, ServerSideCopy):
        pytest.skip(f"{type(store).__name__} has no server-side copy (it is not a remote store)")
    put(store, "src", b"copied without passing through drctl")
    assert store.can_copy_to(store)
    info = store.copy_to("src", store, "dst", {"k": "v"})
    assert info.size == len(b"copied without passing through drctl")
    assert read_all(store, "dst") == b"copied without passing through drctl"
    assert dict(store.stat("dst").metadata) == {"k": "v"}


def test_azure_metadata_names_sign_as_the_service_collates(lab_factory: StoreFactory) -> None:
    """Metadata names with ``_`` sort differently under the service's collation than under ``sorted``; a
    signature built in the wrong order is refused, so a write with such names proves the order."""
    service = lab_factory.blob_service()
    with temporary_container(service) as container:
        store = AzureBlobStore(service.get_container_client(container), ROOT_PREFIX, retry=lab_factory.retry)
        meta = {"a_b": "1", "a9": "2", "_x": "3", "drctl_source_key": "k"}
        written = store.write("k", io.BytesIO(b"data"), metadata=meta)
        assert written.hashes == {"md5": hashlib.md5(b"data").hexdigest()}
        assert store.stat("k").metadata == meta
