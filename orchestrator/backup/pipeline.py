"""Readers that sit between a source and a destination: hashing with end-of-stream verification, zstd,
bandwidth limiting and progress counting. Each is a ``Readable`` wrapping another, so a transfer is one
streaming pipeline with bounded memory."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable

import zstandard

from orchestrator.errors import Cancelled, IntegrityError, InvalidInput
from orchestrator.providers.base import Readable

CancelCheck = Callable[[], bool]
"""True once the work should stop: a runbook step passes its context's ``cancelled`` (deadline or Ctrl-C)."""


def never_cancelled() -> bool:
    return False


def stop_if_cancelled(cancelled: CancelCheck, what: str) -> None:
    """Raise ``Cancelled`` at a point where stopping is safe: between objects, or between chunks of one."""
    if cancelled():
        raise Cancelled(f"{what} stopped: its step timed out or the run was interrupted; running it again resumes")


class HashingReader:
    """Counts and hashes (SHA-256, and MD5 for stores that report it) everything read through it.

    With ``expect_sha256``/``expect_size`` it checks them when the source ends and raises ``IntegrityError``
    *before* returning the final empty read. A store only commits a write after that final read, so corrupt
    bytes are never committed under their real name.
    """

    def __init__(
        self,
        source: Readable,
        name: str,
        expect_sha256: str | None = None,
        expect_size: int | None = None,
        with_md5: bool = False,
    ) -> None:
        self._source = source
        self._name = name
        self._expect_sha256 = expect_sha256
        self._expect_size = expect_size
        self.sha256 = hashlib.sha256()
        # MD5 only when a store will report one to compare with: it costs a second pass over every byte.
        self.md5 = hashlib.md5() if with_md5 else None  # noqa: S324 - an integrity cross-check, not security
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        if data:
            self.sha256.update(data)
            if self.md5 is not None:
                self.md5.update(data)
            self.size += len(data)
            if self._expect_size is not None and self.size > self._expect_size:
                raise IntegrityError(f"{self._name} is longer than the {self._expect_size} bytes recorded")
        else:
            self._check()
        return data

    def _check(self) -> None:
        if self._expect_size is not None and self.size != self._expect_size:
            raise IntegrityError(f"{self._name} is truncated: {self.size} bytes read, {self._expect_size} recorded")
        if self._expect_sha256 is not None and self.sha256.hexdigest() != self._expect_sha256:
            raise IntegrityError(f"{self._name} is corrupt: its SHA-256 does not match the one recorded")


class CompressingReader:
    def __init__(self, source: Readable, level: int = 3) -> None:
        # zstandard only calls read(); its stubs ask for a full IO.
        compressor = zstandard.ZstdCompressor(level=level)
        self._reader = compressor.stream_reader(source, read_size=1024 * 1024)  # type: ignore[arg-type]

    def read(self, size: int = -1, /) -> bytes:
        return bytes(self._reader.read(size))


class DecompressingReader:
    def __init__(self, source: Readable, name: str) -> None:
        decompressor = zstandard.ZstdDecompressor()
        self._reader = decompressor.stream_reader(source, read_size=1024 * 1024)  # type: ignore[arg-type]
        self._name = name

    def read(self, size: int = -1, /) -> bytes:
        try:
            return bytes(self._reader.read(size))
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"{self._name} is corrupt: its compressed stream does not decode") from exc


class TokenBucket:
    """A bandwidth limit shared by every transfer of a run (``--bwlimit``)."""

    def __init__(
        self,
        bytes_per_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = bytes_per_s
        self._capacity = max(bytes_per_s, 64 * 1024)
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
                self._last = now
                if self._tokens >= min(n, self._capacity):
                    self._tokens -= n
                    return
                wait = (min(n, self._capacity) - self._tokens) / self._rate
            self._sleep(wait)


class MeteredReader:
    """Reports every chunk to ``on_bytes``, with a bucket holds the rate to the limit, and stops the stream
    (``Cancelled``) once ``cancelled`` says so: a store aborts a write whose reader raises, so a cancelled
    object is never committed, and a large one does not run on to its end after the step has timed out."""

    def __init__(
        self,
        source: Readable,
        on_bytes: Callable[[int], None],
        bucket: TokenBucket | None,
        cancelled: CancelCheck = never_cancelled,
    ) -> None:
        self._source = source
        self._on_bytes = on_bytes
        self._bucket = bucket
        self._cancelled = cancelled

    def read(self, size: int = -1, /) -> bytes:
        stop_if_cancelled(self._cancelled, "the transfer")
        data = self._source.read(size)
        if data:
            if self._bucket is not None:
                self._bucket.take(len(data))
            self._on_bytes(len(data))
        return data


def parse_rate(text: str) -> float:
    """``--bwlimit`` values: bytes per second with an optional K, M or G suffix (binary multiples)."""
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in "KMG" else (raw, "")
    try:
        value = float(number) * units[unit]
    except ValueError:
        value = -1
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"--bwlimit {text!r} is not a rate; use e.g. 500K, 20M or 1G (bytes per second)")
    return value
