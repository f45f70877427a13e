"""Put Block From URL on the lab: Azurite cannot build a blob from an S3 URL, and says so in a way drctl turns
into ``ServerSideUnavailable``, the signal to stream the object instead. The presigned URL itself is good (it
reads the object from LocalStack), so the refusal is the emulator's, and nothing is left behind."""

from __future__ import annotations

import hashlib
import logging
import os
import traceback
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestrator.errors import NotFound, ServerSideUnavailable
from orchestrator.providers.azure_blob import AzureBlobStore
from orchestrator.providers.azure_from_url import copy_from_url
from orchestrator.providers.factory import StoreFactory
from orchestrator.providers.s3 import S3Store

pytestmark = pytest.mark.lab

MiB = 1024 * 1024


def _stores(factory: StoreFactory, bucket: str, container: str) -> tuple[S3Store, AzureBlobStore]:
    source = factory.open(f"s3://{bucket}/src/")
    dest = factory.open(f"az://{container}/dst/")
    assert isinstance(source, S3Store)
    assert isinstance(dest, AzureBlobStore)
    return source, dest


def test_azurite_refuses_put_block_from_url_with_the_fallback_error(
    lab_factory: StoreFactory, s3_bucket: str, az_container: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = os.urandom(9 * MiB)
    lab_factory.s3_client().put_object(Bucket=s3_bucket, Key="src/obj", Body=data)
    source, dest = _stores(lab_factory, s3_bucket, az_container)
    url = source.presigned_get("obj", 600)

    # The URL is good: it reads any range of the object, without any other credential.
    request = urllib.request.Request(url, headers={"Range": "bytes=4194304-4194313"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 206
        assert answer.read() == data[4 * MiB : 4 * MiB + 10]

    with pytest.raises(ServerSideUnavailable) as caught:
        copy_from_url(dest, "obj", url, len(data), {"drctl_source_key": "obj"}, block_size=4 * MiB)

    # Azurite 3.37.0 answers Put Block From URL of a source outside itself with CannotVerifyCopySource (and Put
    # Blob From URL with APINotImplemented): either is the signal to stream.
    assert caught.value.code in ("CannotVerifyCopySource", "APINotImplemented")
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    for text in (str(caught.value), "".join(traceback.format_exception(caught.value)), caplog.text):
        assert signature not in text
        assert urlsplit(url).query not in text
    with pytest.raises(NotFound):
        dest.stat("obj")


def test_s3_vouches_for_a_whole_object_sha256_but_not_for_a_composite_one(
    lab_factory: StoreFactory, s3_bucket: str, az_container: str
) -> None:
    client = lab_factory.s3_client()
    whole = os.urandom(1 * MiB)
    client.put_object(Bucket=s3_bucket, Key="src/whole", Body=whole, ChecksumAlgorithm="SHA256")
    upload = client.create_multipart_upload(Bucket=s3_bucket, Key="src/parts", ChecksumAlgorithm="SHA256")
    part = client.upload_part(
        Bucket=s3_bucket,
        Key="src/parts",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=os.urandom(5 * MiB),
        ChecksumAlgorithm="SHA256",
    )
    client.complete_multipart_upload(
        Bucket=s3_bucket,
        Key="src/parts",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"], "ChecksumSHA256": part["ChecksumSHA256"]}]},
    )
    source, _ = _stores(lab_factory, s3_bucket, az_container)

    assert source.stat("whole").hashes.get("sha256") == hashlib.sha256(whole).hexdigest()
    assert source.stat("parts").hashes.get("sha256") is None
    with pytest.raises(NotFound):
        source.stat("missing")
