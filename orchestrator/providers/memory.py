"""An in-memory ``ObjectStore`` for unit tests of the logic above providers. Never for cloud behaviour."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.errors import NotFound
from orchestrator.providers.base import HashType, ObjectInfo, ObjectReader, Readable
from orchestrator.providers.streams import IteratorReader, iter_chunks


@dataclass(frozen=True)
class _Stored:
    data: bytes
    metadata: dict[str, str]
    modified: datetime
    generation: int


class MemoryStore:
    """A dict of objects behind a lock; ``now`` can be replaced to control modification times."""

    def __init__(self, name: str = "memory", now: type[datetime] = datetime) -> None:
        self._name = name
        self._now = now
        self._objects: dict[str, _Stored] = {}
        self._lock = threading.Lock()
        self._generation = 0

    @property
    def url(self) -> str:
        return f"mem://{self._name}/"

    @property
    def native_hashes(self) -> frozenset[HashType]:
        return frozenset()

    def _info(self, key: str, obj: _Stored, with_meta: bool) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=len(obj.data),
            modified=obj.modified,
            etag=hashlib.md5(obj.data).hexdigest() + f"-{obj.generation}",  # noqa: S324 - an id, not security
            metadata=dict(obj.metadata) if with_meta else {},
        )

    def _get(self, key: str) -> _Stored:
        with self._lock:
            obj = self._objects.get(key)
        if obj is None:
            raise NotFound(f"{self.url}{key} does not exist")
        return obj

    def ensure_root(self) -> None:
        return None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            snapshot = sorted((k, v) for k, v in self._objects.items() if k.startswith(prefix))
        for key, obj in snapshot:
            yield self._info(key, obj, with_meta=False)

    def stat(self, key: str) -> ObjectInfo:
        return self._info(key, self._get(key), with_meta=True)

    def open_read(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        data = self._get(key).data
        end = len(data) if length is None else start + length
        return IteratorReader(iter([data[start:end]]))

    def write(self, key: str, source: Readable, *, metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        data = b"".join(iter_chunks(source, 1024 * 1024))
        with self._lock:
            self._generation += 1
            self._objects[key] = _Stored(data, dict(metadata or {}), self._now.now(UTC), self._generation)
        return self.stat(key)

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def set_metadata(self, key: str, metadata: Mapping[str, str]) -> None:
        obj = self._get(key)
        with self._lock:
            self._objects[key] = _Stored(obj.data, dict(metadata), obj.modified, obj.generation)
