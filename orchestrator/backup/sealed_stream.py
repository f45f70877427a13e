"""Blob encryption as a stream of sealed segments, the layout of Tink's AES-GCM-HKDF streaming AEAD.

A blob is a header, then segments of at most ``SEGMENT`` plaintext bytes, each sealed with AES-256-GCM under
a key of its own blob: the nonce is the header's random prefix and the segment number, and the associated
data is the whole header plus a last-segment flag. Reordering, moving a blob to another id, and truncation at
any point (even at a segment boundary) all fail authentication instead of decrypting to garbage.

Formats, told apart by the magic:

- ``DRCTLE2`` (written for sets with a key): ``magic | salt(16) | prefix(8) | segment size(u32) | tag(16)``.
  The blob's key comes from HKDF-SHA256 over the set's blob key, with the random salt and the blob id as
  info, as Tink derives a subkey per stream; so no two blobs share a key and nonces cannot collide across
  blobs. The tag is HMAC-SHA256 of the header (and the blob id) under a second derived key, checked before
  any value in the header is used; the segment size must then also lie within bounds.
- ``DRCTLE3`` (written for sets with age recipients): ``magic | n(u32) | age(file key), n bytes | salt |
  prefix | segment size | tag``. The HKDF input is a fresh random file key, sealed to the set's recipients
  with age; only an identity opens it, so whoever writes backups cannot read them back.
- ``DRCTLE1`` (read only, from sets made before): ``magic | prefix(8) | segment size(u32)`` under the set's
  blob key directly. drctl only ever wrote 1 MiB segments, so any other size is refused before it is used.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from orchestrator.errors import IntegrityError, WrongKey
from orchestrator.providers.base import Readable
from orchestrator.providers.streams import read_full

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC_V1 = b"DRCTLE1\0"
MAGIC_V2 = b"DRCTLE2\0"
MAGIC_V3 = b"DRCTLE3\0"
SEGMENT = 1024 * 1024
SEGMENT_MIN = 4 * 1024
SEGMENT_MAX = 16 * 1024 * 1024
TAG = 16
WRAPPED_MAX = 64 * 1024
"""The largest age-sealed file key accepted: a few hundred bytes per recipient, for at most a few dozen."""

_V1 = struct.Struct(">8s8sI")  # magic, nonce prefix, segment size
_TAIL = struct.Struct(">16s8sI")  # salt, nonce prefix, segment size
_LENGTH = struct.Struct(">I")
_HKDF_INFO = b"drctl blob v2\0"

SealKey = Callable[[bytes], bytes]
"""Seals a blob's file key to the set's recipients (age)."""
OpenKey = Callable[[bytes], bytes]
"""Opens a sealed file key with the reader's identities; raises ``WrongKey`` without a matching one."""


def _aead(key: bytes) -> AESGCM:
    # cryptography takes about 0.01 s to import, and only an encrypted set needs it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _invalid_tag() -> type[Exception]:
    """The AEAD's authentication failure; an ``except`` evaluates this only when something was raised."""
    from cryptography.exceptions import InvalidTag

    return InvalidTag


def blob_subkeys(ikm: bytes, salt: bytes, blob: str) -> tuple[bytes, bytes]:
    """The blob's segment key and header-MAC key: HKDF-SHA256(ikm, salt, info = label + blob id)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=_HKDF_INFO + blob.encode()).derive(ikm)
    return okm[:32], okm[32:]


def _header_tag(mac_key: bytes, header: bytes, blob: str) -> bytes:
    return hmac.new(mac_key, header + blob.encode(), hashlib.sha256).digest()[:TAG]


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


class _SegmentedReader:
    """Hands out the bytes of whole segments, made one at a time by ``_next_segment``."""

    _buffer: bytes
    _done: bool

    def _next_segment(self) -> bytes:
        raise NotImplementedError

    def read(self, size: int = -1, /) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._buffer += self._next_segment()
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class EncryptingReader(_SegmentedReader):
    """Reads plaintext from ``source`` and yields the sealed blob: ``DRCTLE3`` when ``seal_key`` is given (a
    fresh file key per blob, sealed to the recipients), else ``DRCTLE2`` under ``key``."""

    def __init__(
        self, source: Readable, blob: str, *, key: bytes | None = None, seal_key: SealKey | None = None
    ) -> None:
        salt, self._prefix = os.urandom(16), os.urandom(8)
        tail = _TAIL.pack(salt, self._prefix, SEGMENT)
        if seal_key is not None:
            file_key = os.urandom(32)
            wrapped = seal_key(file_key)
            head, ikm = MAGIC_V3 + _LENGTH.pack(len(wrapped)) + wrapped + tail, file_key
        elif key is not None:
            head, ikm = MAGIC_V2 + tail, key
        else:
            raise ValueError("an encrypting reader needs a key or recipients")
        segment_key, mac_key = blob_subkeys(ikm, salt, blob)
        self._header = head + _header_tag(mac_key, head, blob)
        self._source = source
        self._aead = _aead(segment_key)
        self._index = 0
        self._pending = read_full(source, SEGMENT)
        self._buffer = self._header
        self._done = False

    def _next_segment(self) -> bytes:
        current = self._pending
        self._pending = read_full(self._source, SEGMENT) if len(current) == SEGMENT else b""
        last = not self._pending
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index), current, self._header + bytes([last]))
        self._index += 1
        self._done = last
        return sealed


class DecryptingReader(_SegmentedReader):
    """Reads a sealed blob and yields plaintext; tampering or truncation anywhere raises ``IntegrityError``.
    ``key`` is the set's blob key (formats 1 and 2); ``open_key`` opens a format-3 file key."""

    def __init__(
        self, source: Readable, blob: str, name: str, *, key: bytes | None, open_key: OpenKey | None = None
    ) -> None:
        self._source = source
        self._name = name
        magic = read_full(source, 8)
        if len(magic) < 8:
            raise IntegrityError(f"{name} is truncated: no encryption header")
        if magic == MAGIC_V1:
            segment_key, header = self._v1_header(magic, key)
        elif magic in (MAGIC_V2, MAGIC_V3):
            segment_key, header = self._keyed_header(magic, key, open_key, blob)
        else:
            raise IntegrityError(f"{name} is not a drctl encrypted blob (bad header)")
        self._aead = _aead(segment_key)
        self._aad = header if magic != MAGIC_V1 else header + blob.encode()
        self._index = 0
        self._pending = read_full(source, self._segment + TAG)
        self._buffer = b""
        self._done = False

    def _read_exactly(self, size: int, what: str) -> bytes:
        data = read_full(self._source, size)
        if len(data) < size:
            raise IntegrityError(f"{self._name} is truncated: the encryption header ends inside its {what}")
        return data

    def _v1_header(self, magic: bytes, key: bytes | None) -> tuple[bytes, bytes]:
        rest = self._read_exactly(_V1.size - len(magic), "nonce prefix and segment size")
        _, self._prefix, self._segment = _V1.unpack(magic + rest)
        if self._segment != SEGMENT:
            # Nothing authenticates this header; pinning the only size drctl wrote keeps it from being used.
            raise IntegrityError(f"{self._name} has a damaged encryption header (segment size {self._segment})")
        if key is None:
            raise WrongKey(f"{self._name} is encrypted with the set's key; pass it with --key-file or --key-env")
        return key, magic + rest

    def _keyed_header(
        self, magic: bytes, key: bytes | None, open_key: OpenKey | None, blob: str
    ) -> tuple[bytes, bytes]:
        head = magic
        if magic == MAGIC_V3:
            length_bytes = self._read_exactly(_LENGTH.size, "key length")
            (length,) = _LENGTH.unpack(length_bytes)
            if not 0 < length <= WRAPPED_MAX:
                raise IntegrityError(f"{self._name} has a damaged encryption header (sealed key of {length} bytes)")
            wrapped = self._read_exactly(length, "sealed key")
            head += length_bytes + wrapped
            if open_key is None:
                raise WrongKey(
                    f"{self._name} is encrypted to the set's age recipients; pass an identity with "
                    "--identity-file or DRCTL_BACKUP_IDENTITY"
                )
            ikm = open_key(wrapped)
        else:
            if key is None:
                raise WrongKey(f"{self._name} is encrypted with the set's key; pass it with --key-file or --key-env")
            ikm = key
        tail = self._read_exactly(_TAIL.size, "salt, nonce prefix and segment size")
        tag = self._read_exactly(TAG, "tag")
        head += tail
        salt, self._prefix, self._segment = _TAIL.unpack(tail)
        segment_key, mac_key = blob_subkeys(ikm, salt, blob)
        if not hmac.compare_digest(tag, _header_tag(mac_key, head, blob)):
            raise IntegrityError(
                f"{self._name} fails authentication in its encryption header: corrupt, tampered, moved from "
                "another blob, or sealed under another key"
            )
        if not SEGMENT_MIN <= self._segment <= SEGMENT_MAX:
            raise IntegrityError(f"{self._name} declares segments of {self._segment} bytes, outside drctl's bounds")
        return segment_key, head + tag

    def _next_segment(self) -> bytes:
        current = self._pending
        self._pending = read_full(self._source, self._segment + TAG) if len(current) == self._segment + TAG else b""
        last = not self._pending
        try:
            plain = self._aead.decrypt(_nonce(self._prefix, self._index), current, self._aad + bytes([last]))
        except _invalid_tag() as exc:
            raise IntegrityError(
                f"{self._name} fails authentication at segment {self._index}: corrupt, truncated or tampered"
            ) from exc
        self._index += 1
        self._done = last
        return plain
