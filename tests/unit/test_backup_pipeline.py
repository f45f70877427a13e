"""The readers between a source and a destination: hashing with end-of-stream checks, zstd, the bandwidth
limit and metering, and ``--bwlimit`` parsing."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from orchestrator.backup.pipeline import (
    CompressingReader,
    DecompressingReader,
    HashingReader,
    MeteredReader,
    TokenBucket,
    parse_rate,
)
from orchestrator.errors import IntegrityError, InvalidInput
from orchestrator.providers.base import Readable


def drain(reader: Readable, size: int = 64 * 1024) -> bytes:
    parts: list[bytes] = []
    while chunk := reader.read(size):
        parts.append(chunk)
    return b"".join(parts)


class FakeTime:
    """A clock that moves only when something sleeps, so rate limits are checked exactly and instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        # A sleep too short to move the clock would spin forever: fail instead (tests use exact binary values).
        assert self.now + seconds > self.now, f"sleep({seconds}) does not advance the clock"
        self.sleeps.append(seconds)
        self.now += seconds


# -- HashingReader -------------------------------------------------------------------------------------------


def test_hashing_reader_passes_bytes_through_and_hashes_them() -> None:
    data = os.urandom(300_000)
    reader = HashingReader(io.BytesIO(data), "obj", with_md5=True)
    assert drain(reader, 7_000) == data
    assert reader.size == len(data)
    assert reader.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    assert reader.md5 is not None
    assert reader.md5.hexdigest() == hashlib.md5(data).hexdigest()


def test_hashing_reader_computes_md5_only_when_asked() -> None:
    reader = HashingReader(io.BytesIO(b"abc"), "obj")
    assert drain(reader) == b"abc"
    assert reader.md5 is None


def test_expected_size_and_hash_that_match_pass() -> None:
    data = os.urandom(10_000)
    reader = HashingReader(io.BytesIO(data), "obj", hashlib.sha256(data).hexdigest(), len(data))
    assert drain(reader) == data


def test_wrong_content_of_the_right_size_fails_at_the_final_read() -> None:
    data = os.urandom(10_000)
    reader = HashingReader(io.BytesIO(b"x" * len(data)), "obj k", hashlib.sha256(data).hexdigest(), len(data))
    assert reader.read(len(data)) == b"x" * len(data)  # every byte is handed out...
    with pytest.raises(IntegrityError, match="obj k is corrupt: its SHA-256 does not match"):
        reader.read(1)  # ...but the end of the stream is never reported: a store would not commit


def test_short_source_fails_as_truncated_at_the_end() -> None:
    reader = HashingReader(io.BytesIO(b"12345"), "obj", expect_size=10)
    assert reader.read(100) == b"12345"
    with pytest.raises(IntegrityError, match="obj is truncated: 5 bytes read, 10 recorded"):
        reader.read(100)


def test_long_source_fails_as_soon_as_it_passes_the_size() -> None:
    reader = HashingReader(io.BytesIO(b"0123456789"), "obj", expect_size=4)
    assert reader.read(4) == b"0123"
    with pytest.raises(IntegrityError, match="longer than the 4 bytes recorded"):
        reader.read(4)


def test_empty_source_with_nothing_expected_passes() -> None:
    reader = HashingReader(io.BytesIO(b""), "obj", hashlib.sha256(b"").hexdigest(), 0)
    assert reader.read(10) == b""


# -- zstd ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"a", os.urandom(3 * 1024 * 1024 + 5), b"log line\n" * 200_000])
def test_compression_round_trips(data: bytes) -> None:
    compressed = drain(CompressingReader(io.BytesIO(data)), 10_000)
    assert compressed.startswith(b"\x28\xb5\x2f\xfd")
    assert drain(DecompressingReader(io.BytesIO(compressed), "blob"), 3_000) == data


def test_compressible_data_shrinks() -> None:
    data = b"the same line, again\n" * 100_000
    assert len(drain(CompressingReader(io.BytesIO(data)))) < len(data) // 50


def test_garbage_does_not_decompress() -> None:
    with pytest.raises(IntegrityError, match="blob x is corrupt: its compressed stream does not decode"):
        drain(DecompressingReader(io.BytesIO(b"not zstd at all" * 10), "blob x"))


def test_truncated_compressed_data_is_caught_by_the_hash_check_behind_it() -> None:
    """zstd alone hands back a short stream for a truncated frame; the size check after it must catch it."""
    data = os.urandom(1000) * 300
    compressed = drain(CompressingReader(io.BytesIO(data)))
    chain = HashingReader(
        DecompressingReader(io.BytesIO(compressed[:-1]), "blob"), "blob", hashlib.sha256(data).hexdigest(), len(data)
    )
    with pytest.raises(IntegrityError, match="truncated"):
        drain(chain)


# -- TokenBucket and MeteredReader ----------------------------------------------------------------------------------


def test_bucket_allows_one_second_of_burst_then_holds_the_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(100_000, clock=t.clock, sleep=t.sleep)
    start = t.now
    bucket.take(100_000)
    assert t.now == start, "a full bucket lets one second's worth through at once"
    for _ in range(10):
        bucket.take(50_000)
    assert t.now - start == pytest.approx(5.0)


def test_bucket_refills_only_up_to_its_capacity() -> None:
    t = FakeTime()
    bucket = TokenBucket(100_000, clock=t.clock, sleep=t.sleep)
    t.now += 3600  # a long idle spell must not bank an hour of burst
    bucket.take(100_000)
    assert t.sleeps == []
    bucket.take(100_000)
    assert sum(t.sleeps) == pytest.approx(1.0)


def test_low_rates_still_allow_a_64k_burst_and_average_out() -> None:
    t = FakeTime()
    bucket = TokenBucket(1_024, clock=t.clock, sleep=t.sleep)
    bucket.take(64 * 1024)
    assert t.sleeps == []
    bucket.take(200 * 1024)  # bigger than the bucket: waits for a full bucket, then goes into debt
    assert t.sleeps == [64.0]
    bucket.take(1_024)
    assert t.now - 1000.0 == (200 * 1024 + 1_024) / 1_024


def test_metered_reader_reports_every_byte_and_respects_the_bucket() -> None:
    t = FakeTime()
    bucket = TokenBucket(65_536, clock=t.clock, sleep=t.sleep)
    seen: list[int] = []
    data = os.urandom(65_536 * 4)
    reader = MeteredReader(io.BytesIO(data), seen.append, bucket)
    assert drain(reader, 65_536) == data
    assert sum(seen) == len(data)
    assert seen == [65_536] * 4
    assert t.now - 1000.0 == pytest.approx(3.0)


def test_metered_reader_without_a_bucket_never_waits() -> None:
    seen: list[int] = []
    assert drain(MeteredReader(io.BytesIO(b"x" * 1000), seen.append, None), 300) == b"x" * 1000
    assert seen == [300, 300, 300, 100]


# -- parse_rate ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", 100),
        ("500K", 500 * 1024),
        ("500k", 500 * 1024),
        ("20M", 20 * 1024**2),
        ("10MB", 10 * 1024**2),
        ("10MiB", 10 * 1024**2),
        ("10mib", 10 * 1024**2),
        ("1G", 1024**3),
        ("1.5M", 1.5 * 1024**2),
        (" 2K ", 2048),
        ("1e3", 1000),
    ],
)
def test_rates_parse_as_binary_multiples(text: str, expected: float) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "B", "K", "M", "abc", "0", "0K", "-5M", "10X", "1.2.3M", "10 per s"])
def test_invalid_rates_are_refused_naming_the_value(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"is not a rate; use e\.g\. 500K, 20M or 1G"):
        parse_rate(text)


@pytest.mark.parametrize("text", ["nan", "NaN", "-nan", "nanM"])
def test_not_a_number_is_not_a_rate(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_rate(text)
