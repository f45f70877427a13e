"""The backup engine's S3 -> Azure server-side path (Put Block From URL) over in-memory fakes: how each copy
is proven, what happens when the source changes while the service copies it, and how the run falls back to
streaming when the destination's service refuses. The provider's own requests are tested against recorded
answers of the real service in test_azure_put_block_from_url.py; Azurite lacks the call (unit only)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from orchestrator.backup.copy import CopyOptions, execute_copy, plan_copy
from orchestrator.backup.journal import CopyJournal
from orchestrator.errors import IntegrityError, ServerSideUnavailable, Transient
from orchestrator.providers.base import HashType, ObjectInfo, Readable
from orchestrator.providers.memory import MemoryStore
from tests.unit.test_backup_engine import new_set, put, read

OBJECTS = {f"k/{i}": bytes([i]) * (1000 + i) for i in range(6)}


class PresigningSource(MemoryStore):
    """An S3-like source: hands out URLs to its objects, and may vouch for a stored SHA-256 of each."""

    def __init__(self, with_checksums: bool) -> None:
        super().__init__("s3src")
        self.with_checksums = with_checksums
        self.overwrite_after_presign: str | None = None

    def _hashes(self, key: str) -> Mapping[HashType, str]:
        if not self.with_checksums:
            return {}
        return {"sha256": hashlib.sha256(read(self, key)).hexdigest()}

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for info in super().list(prefix):
            yield ObjectInfo(info.key, info.size, info.modified, info.etag, hashes=self._hashes(info.key))

    def stat(self, key: str) -> ObjectInfo:
        info = super().stat(key)
        return ObjectInfo(info.key, info.size, info.modified, info.etag, hashes=self._hashes(key))

    def presigned_get(self, key: str, expires_s: int, *, version_id: str | None = None) -> str:
        assert 3600 <= expires_s <= 7 * 24 * 3600
        url = f"https://src.example/{key}?X-Amz-Signature=secret"
        if key == self.overwrite_after_presign:
            # Another writer replaces the object while the destination's service is reading it.
            super().write(key, io.BytesIO(b"X" * len(read(self, key))))
        return url


class BuildingDest(MemoryStore):
    """An Azure-like destination whose service reads the source URL itself, or refuses to."""

    def __init__(self, source: PresigningSource, refuse: str | None = None) -> None:
        super().__init__("azdest")
        self.source = source
        self.refuse = refuse
        self.built: list[str] = []
        self.streamed: list[str] = []

    def build_from_url(self, key: str, source_url: str, size: int, metadata: Mapping[str, str]) -> ObjectInfo:
        if self.refuse == "500":
            # A provider that quotes the URL it was given, as Azure's AuthenticationFailed answer does.
            raise Transient(f"{self.url}{key}: the service answered 500 reading {source_url} (simulated)")
        if self.refuse:
            raise ServerSideUnavailable(f"the service refused ({self.refuse})", code=self.refuse)
        source_key = source_url.split("https://src.example/", 1)[1].split("?", 1)[0]
        self.built.append(key)
        return super().write(key, io.BytesIO(read(self.source, source_key)), metadata=metadata)

    def write(self, key: str, source: Readable, *, metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        if key.startswith("data/"):
            self.streamed.append(key)
        return super().write(key, source, metadata=metadata)


def _copy(source: PresigningSource, dest: BuildingDest, tmp_path: Path) -> dict[str, object]:
    bset = new_set(dest)
    journal = CopyJournal(tmp_path / "journal.sqlite")
    try:
        options = CopyOptions(mode="full", transfers=2)
        result = execute_copy(plan_copy(source, bset, options), source, bset, options, journal)
    finally:
        journal.close()
    point = bset.load_point(result.recovery_point)
    assert {e.key: e.sha256 for e in point.objects} == {k: hashlib.sha256(v).hexdigest() for k, v in OBJECTS.items()}
    return result.summary()


def test_a_source_with_stored_checksums_is_proven_by_them(tmp_path: Path) -> None:
    source = PresigningSource(with_checksums=True)
    put(source, OBJECTS)
    dest = BuildingDest(source)
    summary = _copy(source, dest, tmp_path)
    assert summary["server_side_verified_by"] == {"source checksum": len(OBJECTS)}
    assert summary["paths"] == {"streamed": 0, "server-side": len(OBJECTS), "unchanged": 0, "resumed": 0}
    assert len(dest.built) == len(OBJECTS)
    assert dest.streamed == []


def test_a_source_without_checksums_is_proven_by_reading_the_copy_back(tmp_path: Path) -> None:
    source = PresigningSource(with_checksums=False)
    put(source, OBJECTS)
    summary = _copy(source, BuildingDest(source), tmp_path)
    assert summary["server_side_verified_by"] == {"read-back": len(OBJECTS)}


def test_a_refusing_service_makes_the_run_stream_and_say_why(tmp_path: Path) -> None:
    source = PresigningSource(with_checksums=True)
    put(source, OBJECTS)
    dest = BuildingDest(source, refuse="CannotVerifyCopySource")
    summary = _copy(source, dest, tmp_path)
    assert summary["server_side_refused"] == "CannotVerifyCopySource"
    assert summary["paths"] == {"streamed": len(OBJECTS), "server-side": 0, "unchanged": 0, "resumed": 0}
    assert summary["server_side_verified_by"] == {}
    assert len(dest.streamed) == len(OBJECTS)


def test_a_service_failing_after_its_retries_makes_the_run_stream_and_say_so(tmp_path: Path) -> None:
    source = PresigningSource(with_checksums=True)
    put(source, OBJECTS)
    dest = BuildingDest(source, refuse="500")
    summary = _copy(source, dest, tmp_path)
    assert str(summary["server_side_refused"]).startswith("Transient: ")
    assert "X-Amz-Signature" not in str(summary)
    assert "answered 500 reading <presigned URL>" in str(summary)
    assert summary["paths"] == {"streamed": len(OBJECTS), "server-side": 0, "unchanged": 0, "resumed": 0}


def test_a_source_replaced_while_the_service_copies_it_fails_the_copy(tmp_path: Path) -> None:
    source = PresigningSource(with_checksums=True)
    put(source, OBJECTS)
    source.overwrite_after_presign = "k/3"
    bset = new_set(BuildingDest(source))
    journal = CopyJournal(tmp_path / "journal.sqlite")
    options = CopyOptions(mode="full", transfers=1)
    try:
        with pytest.raises(IntegrityError, match=r"k/3 changed while the service copied it"):
            execute_copy(plan_copy(source, bset, options), source, bset, options, journal)
    finally:
        journal.close()
    assert bset.point_ids() == []
