"""Copies whose bytes never pass through drctl, each proven before anyone relies on it.

Backup and restore call ``copy_server_side`` per object: it copies within one service where both ends allow
(S3 CopyObject, or UploadPartCopy past the single-copy limit; Azure Copy Blob within one account) and
returns ``None`` where they do not, so the caller streams instead. Backup also calls ``build_from_url``
from S3 into Azure: Azure's service reads the S3 object through a presigned URL, block by block.

The copy's hash comes from the service when it reports a whole-object SHA-256 for what it wrote (S3 does,
for a single CopyObject), from S3's stored checksum of the source for a blob Azure built from it, otherwise
from reading the copy back once: one download, where streaming costs a download and an upload.
A hash the caller already expects (the source's MD5, the manifest's SHA-256) must match. A restore's copy
that does not is deleted before the error is raised, so no target keeps bytes that failed their check; a
backup blob is left, since an earlier point of the same source object names the same blob.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from orchestrator.backup.pipeline import HashingReader
from orchestrator.errors import DrError, IntegrityError, ServerSideUnavailable
from orchestrator.providers.base import BuildFromUrl, ObjectInfo, ObjectStore, PresignedRead, ServerSideCopy, object_url
from orchestrator.providers.streams import iter_chunks

Proof = Literal["service checksum", "source checksum", "read-back"]
# A presigned URL must outlive the slowest copy the service might make of one object; S3 caps it at 7 days.
URL_MIN_S = 3600
URL_MAX_S = 7 * 24 * 3600
SLOWEST_BYTES_PER_S = 1024 * 1024
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ServerSideCopied:
    size: int
    sha256: str
    md5: str | None
    """Computed only by a read-back (the service reports none for a copy)."""
    proof: Proof


def can_copy_server_side(source: ObjectStore, dest: ObjectStore) -> bool:
    return isinstance(source, ServerSideCopy) and source.can_copy_to(dest)


def copy_server_side(
    source: ObjectStore,
    key: str,
    dest: ObjectStore,
    dest_key: str,
    metadata: Mapping[str, str],
    *,
    size: int,
    expect_sha256: str | None = None,
    expect_md5: str | None = None,
    discard_failed: bool = False,
) -> ServerSideCopied | None:
    """Copy ``key`` to ``dest_key`` inside the service and prove it; None when the two stores cannot."""
    if not isinstance(source, ServerSideCopy) or not source.can_copy_to(dest):
        return None
    written = source.copy_to(key, dest, dest_key, metadata)
    name = object_url(source, key)
    sha256 = written.hashes.get("sha256")
    md5: str | None = None
    proof: Proof = "service checksum"
    if sha256 is None or (expect_md5 is not None and expect_sha256 is None):
        # No whole-object SHA-256 from the service (Azure, an S3 multipart copy), or an MD5 to check that the
        # service did not report: the copy is read back once and hashed.
        sha256, md5, read = _read_back(dest, dest_key)
        proof = "read-back"
        if read != written.size:
            _discard(dest, dest_key, discard_failed)
            raise IntegrityError(f"the server-side copy of {name} read back {read} bytes, not {written.size}")
    problem = None
    if written.size != size:
        problem = f"{written.size} bytes, not the {size} listed (it changed during the copy)"
    elif expect_sha256 is not None and sha256 != expect_sha256:
        problem = "a SHA-256 other than the one recorded"
    elif expect_md5 is not None and md5 != expect_md5:
        problem = "an MD5 other than the one its store reports (the source is corrupt or changed)"
    if problem is not None:
        _discard(dest, dest_key, discard_failed)
        raise IntegrityError(f"the server-side copy of {name} to {object_url(dest, dest_key)} has {problem}")
    return ServerSideCopied(written.size, sha256, md5, proof)


def can_build_from_url(source: ObjectStore, dest: ObjectStore) -> bool:
    return isinstance(source, PresignedRead) and isinstance(dest, BuildFromUrl)


def build_from_url(
    source: ObjectStore, info: ObjectInfo, dest: ObjectStore, dest_key: str, metadata: Mapping[str, str]
) -> ServerSideCopied | None:
    """Have ``dest``'s service read ``info``'s object from ``source`` itself (S3 into Azure, as AzCopy does),
    then prove it: by S3's stored SHA-256 of the object where it has one (the object must still be the one
    listed, etag and size, so that hash is of the bytes the service read), else by reading the copy back.
    Raises ``ServerSideUnavailable`` when ``dest``'s service cannot (nothing committed: stream instead)."""
    if not isinstance(source, PresignedRead) or not isinstance(dest, BuildFromUrl):
        return None
    lifetime = min(URL_MAX_S, URL_MIN_S + info.size // SLOWEST_BYTES_PER_S)
    url = source.presigned_get(info.key, lifetime, version_id=info.version_id)
    try:
        written = dest.build_from_url(dest_key, url, info.size, metadata)
    except DrError as exc:
        # The URL is a secret made here; whichever store took it, no message that quotes it leaves this call.
        if url not in str(exc):
            raise
        masked = str(exc).replace(url, "<presigned URL>")
        if isinstance(exc, ServerSideUnavailable):
            raise ServerSideUnavailable(masked, code=exc.code, source_status=exc.source_status) from None
        raise type(exc)(masked) from None
    name = object_url(source, info.key)
    after = source.stat(info.key)
    if (after.size, after.etag) != (info.size, info.etag) or written.size != info.size:
        raise IntegrityError(f"{name} changed while the service copied it server-side; run the copy again")
    sha256 = after.hashes.get("sha256")
    if sha256 is not None:
        return ServerSideCopied(written.size, sha256, None, "source checksum")
    sha256, md5, read = _read_back(dest, dest_key)
    if read != written.size:
        raise IntegrityError(f"the server-side copy of {name} read back {read} bytes, not {written.size}")
    return ServerSideCopied(written.size, sha256, md5, "read-back")


def _read_back(store: ObjectStore, key: str) -> tuple[str, str, int]:
    with store.open_read(key) as reader:
        hasher = HashingReader(reader, object_url(store, key), with_md5=True)
        for _ in iter_chunks(hasher, READ_CHUNK):
            pass
    assert hasher.md5 is not None  # with_md5
    return hasher.sha256.hexdigest(), hasher.md5.hexdigest(), hasher.size


def _discard(store: ObjectStore, key: str, wanted: bool) -> None:
    if not wanted:
        return
    try:
        store.delete(key)
    except DrError:
        # Best effort: the integrity error being raised matters more, and it names the target to restore again.
        return
