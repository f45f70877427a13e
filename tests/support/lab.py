"""Helpers for tests that run against the local lab: unique names and guaranteed cleanup."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from orchestrator.providers.factory import StoreFactory

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient
    from mypy_boto3_s3 import S3Client

LAB_VARS = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AZURE_STORAGE_CONNECTION_STRING",
)
OPTIONAL_LAB_VARS = ("DRCTL_PG_BIN", "DRCTL_LAB_DB_PASSWORD", "DRCTL_LAB_RUNNER")
"""What `lab.py env` adds once PostgreSQL is installed: the client tools db.restore runs, the lab databases'
password, and whether the instance runner is on."""
NOT_RUNNING = (
    'the local lab is not running: run the suite with `make test`, or `make lab-up` then `eval "$(make -s lab-env)"`'
)


def lab_settings() -> dict[str, str] | None:
    """The lab's settings from the environment, or None when the lab was not brought up for this run."""
    if not all(os.environ.get(v) for v in LAB_VARS):
        return None
    return {v: os.environ[v] for v in (*LAB_VARS, *OPTIONAL_LAB_VARS) if v in os.environ}


def unique_name(kind: str) -> str:
    """A bucket/container-safe name no other test (or earlier run) uses."""
    return f"t-{kind}-{uuid.uuid4().hex[:16]}"


@contextlib.contextmanager
def temporary_bucket(factory: StoreFactory, versioned: bool = False) -> Iterator[str]:
    client = factory.s3_client()
    name = unique_name("b")
    client.create_bucket(Bucket=name)
    if versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    try:
        yield name
    finally:
        empty_bucket(factory.s3_client(), name)
        client.delete_bucket(Bucket=name)


def empty_bucket(client: S3Client, name: str) -> None:
    """Delete every version, delete marker and unfinished upload in the bucket."""
    for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", [])]
        doomed += [{"Key": m["Key"], "VersionId": m["VersionId"]} for m in page.get("DeleteMarkers", [])]
        for i in range(0, len(doomed), 1000):
            client.delete_objects(Bucket=name, Delete={"Objects": doomed[i : i + 1000]})  # type: ignore[typeddict-item]
    for up in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])


@contextlib.contextmanager
def temporary_container(service: BlobServiceClient) -> Iterator[str]:
    name = unique_name("c")
    service.create_container(name)
    try:
        yield name
    finally:
        with contextlib.suppress(ResourceNotFoundError):
            service.delete_container(name)


def container_sas(service: BlobServiceClient, container: str) -> str:
    """A container SAS (read, add, create, write, delete, list) valid for an hour, signed with the lab's key."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        str(service.account_name),
        container,
        account_key=service.credential.account_key,
        permission=ContainerSasPermissions(read=True, add=True, create=True, write=True, delete=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def sas_container_client(service: BlobServiceClient, container: str) -> ContainerClient:
    """The container as a user holding only a SAS reaches it, through the same client options drctl uses."""
    from azure.storage.blob import ContainerClient

    from orchestrator.providers.factory import azure_client_options

    url = f"{service.url.rstrip('/')}/{container}?{container_sas(service, container)}"
    return ContainerClient.from_container_url(url, **azure_client_options(url, os.environ))


class RandomSource:
    """A ``Readable`` of ``size`` random bytes made on demand, hashing what it hands out.

    It never holds more than one requested chunk, so tests can prove a store's memory stays bounded.
    """

    def __init__(self, size: int, fail_after: int | None = None) -> None:
        self.remaining = size
        self.sent = 0
        self.sha256 = hashlib.sha256()
        self._fail_after = fail_after

    def read(self, size: int = -1, /) -> bytes:
        if self._fail_after is not None and self.sent >= self._fail_after:
            raise ConnectionResetError("source vanished mid-stream (simulated)")
        n = self.remaining if size < 0 else min(size, self.remaining)
        data = os.urandom(n)
        self.remaining -= n
        self.sent += n
        self.sha256.update(data)
        return data


# A well-formed connection string for the lab's Azurite account with a key that is valid base64 but wrong.
AZURITE_WRONG_KEY_CONN = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)
