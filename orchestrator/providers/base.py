"""The object-store contract every storage provider implements, and the optional abilities beside it.

Algorithms (copy, verify, restore) are written once above these protocols; a provider never re-implements
them. Optional abilities are separate protocols detected at runtime with ``isinstance``.

Keys are ``/``-separated strings relative to the store's root (its bucket, container or directory plus the
location's prefix). Every method raises only errors from :mod:`orchestrator.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

from orchestrator.errors import NotFound

HashType = Literal["sha256", "md5"]

# Large writes are cut into parts of this size; memory held by one write is bounded by
# part_size * (part_concurrency + 1), whatever the object's size.
DEFAULT_PART_SIZE = 8 * 1024 * 1024
DEFAULT_PART_CONCURRENCY = 4
# Said wherever bytes fail the MD5 a source vouched for: on AWS a single-part ETag is the MD5, but some
# S3-compatible stores (gateways that encrypt or compress) give ETags that only look like one.
ETAG_MD5_HINT = "if the source is an S3-compatible store whose ETags are not MD5s, set DRCTL_S3_ETAG_MD5=off"
# Every client's bounds: a dead endpoint fails fast, a slow one is waited for.
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object without reading its bytes.

    ``hashes`` holds only hashes of the whole object that the store itself vouches for (hex digests), e.g.
    S3's full-object SHA-256 checksum or Azure's Content-MD5; it is empty when the store has none.
    ``version_id`` is set by ``stat`` on versioned stores; listings leave it ``None`` unless they list versions.
    ``metadata`` is filled by ``stat`` only; listings leave it empty because most stores cannot list it cheaply.
    """

    key: str
    size: int
    modified: datetime
    etag: str | None = None
    version_id: str | None = None
    hashes: Mapping[HashType, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)


class Readable(Protocol):
    """A byte source read in pieces: ``read(n)`` returns at most ``n`` bytes and ``b""`` only at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


class ObjectReader(Readable, Protocol):
    """An open object (or range of one) being streamed. Always close it, ideally with ``with``.

    ``content_md5`` is the MD5 (hex) the store vouches for the whole object, learnt when it was opened (S3's
    ETag of a single-part object without KMS or customer keys); None for a range or when there is none.
    """

    @property
    def content_md5(self) -> str | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class ObjectStore(Protocol):
    """A flat namespace of objects under one root.

    Contract shared by every implementation (checked by ``tests/contract``):

    - ``list`` yields every object whose key starts with ``prefix``, in ascending key order, fetching pages
      lazily; it never yields a partially written object.
    - ``write`` is atomic: readers see the old object or the complete new one, never a part. A failed or
      interrupted write leaves no object behind (or the previous one untouched).
    - Missing objects raise ``NotFound``; a missing bucket or container raises ``NotFound`` naming it.
    - ``delete`` of a missing key is not an error, so deletes can be retried.
    """

    @property
    def url(self) -> str:
        """The location as the user would type it, with no credential in it."""
        ...

    @property
    def native_hashes(self) -> frozenset[HashType]:
        """Hash types this store may report in ``ObjectInfo.hashes`` without reading the object."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, ascending by key. Raises ``NotFound`` if the root is missing."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """One object's info including metadata. Raises ``NotFound``."""
        ...

    def open_read(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        """Stream the object's bytes from ``start``, for ``length`` bytes or to the end. Raises ``NotFound``."""
        ...

    def write(self, key: str, source: Readable, *, metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        """Store everything ``source`` yields under ``key``, replacing any object there, with bounded memory.

        Metadata names must be lowercase identifiers (``[a-z_][a-z0-9_]*``) and values ASCII: the
        intersection of what S3 and Azure accept.

        Large sources go up in parts (multipart upload, staged blocks) that are committed only once all are
        stored. Returns the new object's info.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def set_metadata(self, key: str, metadata: Mapping[str, str]) -> None:
        """Replace the object's user metadata without changing its bytes. Raises ``NotFound``."""
        ...

    def ensure_root(self) -> None:
        """Check the root (bucket, container, directory) exists and is reachable. Raises ``NotFound``."""
        ...


@runtime_checkable
class CreatableRoot(Protocol):
    """A store whose root can be made on demand (a directory), unlike a bucket or container."""

    def create_root(self) -> None:
        """Create the root if it is missing; an existing root is left as it is."""
        ...


@runtime_checkable
class KeyRules(Protocol):
    """A store that cannot hold every key as an object of its own (Azure resolves ``.`` and ``..`` segments of
    a blob name, so ``a/../b`` would land on ``b``)."""

    def key_problem(self, key: str) -> str | None:
        """Why ``key`` cannot be written as itself, or None when it can."""
        ...


def object_url(store: ObjectStore, key: str) -> str:
    """The location of ``key`` in ``store`` for messages: a directory's url has no trailing slash."""
    return f"{store.url.rstrip('/')}/{key}"


def has_dot_segment(key: str) -> bool:
    return any(part in (".", "..") for part in key.split("/"))


def ensure_or_create_root(store: ObjectStore) -> None:
    """The root must exist, or be creatable here: a missing bucket stays an error, a missing directory is made."""
    try:
        store.ensure_root()
    except NotFound:
        if not isinstance(store, CreatableRoot):
            raise
        store.create_root()


@runtime_checkable
class Md5CheckedWrite(Protocol):
    """A store whose service checks a write's bytes against an MD5 given before them (Azure's Content-MD5), so
    bytes whose MD5 the source vouches for are proven end to end without hashing them with MD5 here."""

    def write_md5_checked(
        self, key: str, source: Readable, md5_hex: str, *, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        """``write``, refused with ``IntegrityError`` (and nothing committed) if the bytes' MD5 is not ``md5_hex``.
        The returned info reports ``md5_hex`` as the object's MD5."""
        ...


@runtime_checkable
class ServerSideCopy(Protocol):
    """A store that can copy an object to another store without the bytes passing through drctl."""

    def can_copy_to(self, dest: ObjectStore) -> bool:
        """Whether ``copy_to`` can reach ``dest`` server-side (same service, account or endpoint)."""
        ...

    def copy_to(self, key: str, dest: ObjectStore, dest_key: str, metadata: Mapping[str, str]) -> ObjectInfo:
        """Copy ``key`` into ``dest`` as ``dest_key`` with ``metadata``. Raises ``NotFound`` for a missing source."""
        ...


@runtime_checkable
class PresignedRead(Protocol):
    """A store that can hand another service a URL to read one object itself (S3's presigned GET)."""

    def presigned_get(self, key: str, expires_s: int, *, version_id: str | None = None) -> str:
        """A secret URL: whoever holds it reads ``key`` for ``expires_s`` seconds. Never put it in a message."""
        ...


@runtime_checkable
class BuildFromUrl(Protocol):
    """A store whose service can build an object from a URL it reads itself (Azure's Put Block From URL)."""

    def build_from_url(self, key: str, source_url: str, size: int, metadata: Mapping[str, str]) -> ObjectInfo:
        """Raises ``ServerSideUnavailable`` when the service cannot (nothing committed: stream instead)."""
        ...


@runtime_checkable
class Versioned(Protocol):
    """A store that keeps earlier versions of objects (S3 versioning, Azure blob versions)."""

    def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every version of every object under ``prefix``, each with its ``version_id``."""
        ...

    def open_version(self, key: str, version_id: str) -> ObjectReader:
        """Stream one specific version. Raises ``NotFound``."""
        ...
