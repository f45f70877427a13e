"""Small adapters between byte iterators and the ``Readable``/``ObjectReader`` protocols."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self

from orchestrator.providers.base import Readable


def read_full(source: Readable, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads; fewer only at the end of the source."""
    parts: list[bytes] = []
    want = size
    while want > 0:
        chunk = source.read(want)
        if not chunk:
            break
        parts.append(chunk)
        want -= len(chunk)
    return b"".join(parts)


def iter_chunks(source: Readable, size: int) -> Iterator[bytes]:
    """Full ``size``-byte chunks of ``source`` (the last may be shorter); nothing for an empty source."""
    while chunk := read_full(source, size):
        yield chunk


class IteratorReader:
    """An ``ObjectReader`` over an iterator of byte chunks, with an optional close hook for the transport and
    the whole object's MD5 where the store vouches for one."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        on_close: Callable[[], None] | None = None,
        content_md5: str | None = None,
    ) -> None:
        self.content_md5 = content_md5
        self._chunks = chunks
        self._buffer = b""
        self._on_close = on_close
        self._closed = False

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            rest = self._buffer + b"".join(self._chunks)
            self._buffer = b""
            return rest
        # Gather whole chunks and join once: appending to one bytes object would copy it on every chunk.
        parts = [self._buffer] if self._buffer else []
        have = len(self._buffer)
        while have < size:
            nxt = next(self._chunks, None)
            if nxt is None:
                break
            parts.append(nxt)
            have += len(nxt)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if len(data) <= size:
            self._buffer = b""
            return data
        self._buffer = data[size:]
        return data[:size]

    def close(self) -> None:
        if not self._closed and self._on_close is not None:
            self._on_close()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
