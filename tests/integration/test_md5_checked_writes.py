"""MD5s a source vouches for, checked by Azurite itself rather than hashed twice here.

An S3 object written in one part has its MD5 as its ETag. A copy into Azure hands that MD5 to the service with
the bytes, and the service refuses bytes that do not match it: these tests prove Azurite really refuses them,
that nothing is committed when it does, and that a blob never records an MD5 its bytes do not have.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from orchestrator.backup.copy import CopyOptions, execute_copy, plan_copy
from orchestrator.backup.journal import CopyJournal
from orchestrator.backup.layout import blob_key
from orchestrator.errors import IntegrityError, NotFound
from orchestrator.providers.azure_blob import AzureBlobStore
from orchestrator.providers.base import ObjectReader, ObjectStore
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import copy_in_process, open_backup_set, read_object

MiB = 1024 * 1024


def _azure(factory: StoreFactory, container: str, prefix: str = "md5/") -> AzureBlobStore:
    store = factory.open(f"az://{container}/{prefix}")
    assert isinstance(store, AzureBlobStore)
    return store


def _blob_content_md5(factory: StoreFactory, container: str, name: str) -> str | None:
    props = factory.blob_service().get_blob_client(container, name).get_blob_properties()
    md5 = props.content_settings.content_md5
    return bytes(md5).hex() if md5 else None


@pytest.mark.parametrize("size", [200 * 1024, 9 * MiB], ids=["one request", "in blocks"])
def test_a_claimed_md5_the_bytes_do_not_have_is_refused_and_nothing_is_committed(
    lab_factory: StoreFactory, az_container: str, size: int
) -> None:
    store = _azure(lab_factory, az_container)
    data = os.urandom(size)
    wrong = hashlib.md5(data + b"x").hexdigest()
    with pytest.raises(IntegrityError, match="do not have the MD5"):
        store.write_md5_checked("blob", io.BytesIO(data), wrong)
    with pytest.raises(NotFound):
        store.stat("blob")


@pytest.mark.parametrize("size", [200 * 1024, 9 * MiB], ids=["one request", "in blocks"])
def test_a_true_claim_is_what_the_blob_records(lab_factory: StoreFactory, az_container: str, size: int) -> None:
    store = _azure(lab_factory, az_container)
    data = os.urandom(size)
    md5 = hashlib.md5(data).hexdigest()
    written = store.write_md5_checked("blob", io.BytesIO(data), md5)
    assert written.hashes == {"md5": md5}
    assert _blob_content_md5(lab_factory, az_container, "md5/blob") == md5
    assert read_object(store, "blob") == data


def test_a_blob_written_in_blocks_without_a_claim_records_no_md5(lab_factory: StoreFactory, az_container: str) -> None:
    # A whole-blob MD5 would cost a second MD5 pass and the service never checks it: none is recorded.
    store = _azure(lab_factory, az_container)
    data = os.urandom(9 * MiB)
    written = store.write("blob", io.BytesIO(data))
    assert written.hashes == {}
    assert _blob_content_md5(lab_factory, az_container, "md5/blob") is None
    assert read_object(store, "blob") == data


def test_a_single_part_s3_object_vouches_for_its_md5_and_a_range_does_not(
    lab_factory: StoreFactory, s3_bucket: str
) -> None:
    client = lab_factory.s3_client()
    data = os.urandom(300 * 1024)
    client.put_object(Bucket=s3_bucket, Key="one", Body=data)
    store = lab_factory.open(f"s3://{s3_bucket}/")
    with store.open_read("one") as reader:
        assert reader.content_md5 == hashlib.md5(data).hexdigest()
        assert reader.read() == data
    with store.open_read("one", start=10, length=100) as reader:
        assert reader.content_md5 is None


def test_a_multipart_s3_object_vouches_for_no_md5(lab_factory: StoreFactory, s3_bucket: str) -> None:
    client = lab_factory.s3_client()
    upload = client.create_multipart_upload(Bucket=s3_bucket, Key="parts")
    part = client.upload_part(
        Bucket=s3_bucket, Key="parts", UploadId=upload["UploadId"], PartNumber=1, Body=os.urandom(1024)
    )
    client.complete_multipart_upload(
        Bucket=s3_bucket,
        Key="parts",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    with lab_factory.open(f"s3://{s3_bucket}/").open_read("parts") as reader:
        assert reader.content_md5 is None


class _LyingSource:
    """A real S3 store whose reader claims the wrong MD5 for one key: a source corrupted in transit."""

    def __init__(self, inner: ObjectStore, key: str) -> None:
        self._inner = inner
        self._key = key

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def open_read(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        reader = self._inner.open_read(key, start, length)
        if key == self._key:
            reader.content_md5 = "0" * 32  # type: ignore[misc]  # IteratorReader's attribute, set on purpose
        return reader


@pytest.fixture
def copy_setup(lab_factory: StoreFactory, s3_bucket: str, az_container: str, tmp_path: Path) -> dict[str, str]:
    client = lab_factory.s3_client()
    for i in range(3):
        client.put_object(Bucket=s3_bucket, Key=f"src/o{i}", Body=os.urandom(64 * 1024 + i))
    return {"source": f"s3://{s3_bucket}/src/", "set": f"az://{az_container}/set/", "state": str(tmp_path)}


def test_a_copy_from_s3_records_the_etag_md5_azure_checked(
    lab_factory: StoreFactory, copy_setup: dict[str, str]
) -> None:
    result = copy_in_process(lab_factory, copy_setup["source"], copy_setup["set"], "full", Path(copy_setup["state"]))
    source = lab_factory.open(copy_setup["source"])
    bset = open_backup_set(lab_factory, copy_setup["set"])
    point = bset.load_point(result.recovery_point)
    etags = {o.key: o.etag for o in source.list()}
    assert len(point.objects) == 3
    for entry in point.objects:
        data = read_object(source, entry.key)
        md5 = hashlib.md5(data).hexdigest()
        assert entry.source_md5 == etags[entry.key] == md5
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        # The blob carries the MD5 Azurite checked the bytes against.
        assert bset.store.stat(blob_key(entry.blob)).hashes == {"md5": md5}


def test_a_copy_whose_source_bytes_miss_their_md5_fails_cleanly_and_seals_nothing(
    lab_factory: StoreFactory, copy_setup: dict[str, str]
) -> None:
    source = _LyingSource(lab_factory.open(copy_setup["source"]), "o1")
    bset = open_backup_set(lab_factory, copy_setup["set"])
    journal = CopyJournal(Path(copy_setup["state"]) / "journal.sqlite")
    options = CopyOptions(mode="full", transfers=1)
    try:
        plan = plan_copy(source, bset, options)  # type: ignore[arg-type]
        with pytest.raises(IntegrityError, match="do not have the MD5"):
            execute_copy(plan, source, bset, options, journal)  # type: ignore[arg-type]
    finally:
        journal.close()
    assert bset.point_ids() == []
