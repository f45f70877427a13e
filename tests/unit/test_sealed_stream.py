"""The sealed blob stream: round trips around segment boundaries, every kind of tampering refused, a header
authenticated before any value in it is used, a subkey per blob (checked against an independent HKDF), blobs
sealed to age recipients that only an identity opens, and blobs of format 1 still readable."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from orchestrator.backup.recipients import IdentitySource, check_recipients, new_identity, sealer
from orchestrator.backup.sealed_stream import (
    MAGIC_V1,
    MAGIC_V2,
    MAGIC_V3,
    SEGMENT,
    TAG,
    DecryptingReader,
    EncryptingReader,
)
from orchestrator.errors import IntegrityError, InvalidInput, WrongKey
from orchestrator.providers.streams import read_full

HEADER = 8 + 16 + 8 + 4 + TAG  # magic, salt, nonce prefix, segment size, header tag
BLOB = "ab" * 32
OTHER_BLOB = "cd" * 32
FORMAT1 = Path(__file__).parent / "data" / "backup" / "format1-blob.bin"


class Trickle:
    """A source that hands out at most ``step`` bytes per read, as network streams do."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._step = step

    def read(self, size: int = -1, /) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        out, self._data = self._data[:n], self._data[n:]
        return out


class Counting:
    """Counts what is read from it: a refusal must come before the stream is consumed (or allocated for)."""

    def __init__(self, data: bytes) -> None:
        self._source = io.BytesIO(data)
        self.read_total = 0
        self.largest_request = 0

    def read(self, size: int = -1, /) -> bytes:
        self.largest_request = max(self.largest_request, size)
        data = self._source.read(size)
        self.read_total += len(data)
        return data


def encrypt(plain: bytes, key: bytes, blob: str = BLOB) -> bytes:
    return EncryptingReader(io.BytesIO(plain), blob, key=key).read()


def decrypt(sealed: bytes, key: bytes | None, blob: str = BLOB) -> bytes:
    return DecryptingReader(io.BytesIO(sealed), blob, "test blob", key=key).read()


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


# -- format 2: a set's key ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 2 * SEGMENT + 7])
def test_stream_round_trips_every_size_around_segment_boundaries(key: bytes, size: int) -> None:
    plain = os.urandom(size)
    sealed = encrypt(plain, key)
    segments = max(1, -(-size // SEGMENT))  # a full last segment is the last one: no empty segment after it
    assert len(sealed) == HEADER + size + segments * TAG
    assert sealed.startswith(MAGIC_V2)
    assert decrypt(sealed, key) == plain


def test_stream_works_through_short_reads_on_both_sides(key: bytes) -> None:
    plain = os.urandom(SEGMENT + 12_345)
    enc = EncryptingReader(Trickle(plain, 4096), BLOB, key=key)
    sealed = b"".join(iter(lambda: enc.read(777), b""))
    dec = DecryptingReader(Trickle(sealed, 5000), BLOB, "t", key=key)
    assert b"".join(iter(lambda: dec.read(1234), b"")) == plain


def test_each_blob_is_sealed_under_its_own_hkdf_subkey(key: bytes) -> None:
    """Independently of drctl's code: HKDF-SHA256(set key, header salt, "drctl blob v2\\0" + blob id) opens
    the first segment, and the set's key used directly (as format 1 did) does not."""
    plain = b"one segment of data"
    sealed = encrypt(plain, key)
    salt, prefix = sealed[8:24], sealed[24:32]
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=b"drctl blob v2\0" + BLOB.encode()).derive(key)
    header, body = sealed[:HEADER], sealed[HEADER:]
    nonce = prefix + struct.pack(">I", 0)
    assert AESGCM(okm[:32]).decrypt(nonce, body, header + b"\x01") == plain
    with pytest.raises(InvalidTag):
        AESGCM(key).decrypt(nonce, body, header + b"\x01")
    other = encrypt(plain, key)
    assert other[8:24] != salt, "every blob draws a fresh salt, so a fresh subkey"


def test_same_plaintext_encrypts_differently_each_time(key: bytes) -> None:
    plain = b"same bytes" * 100
    first, second = encrypt(plain, key), encrypt(plain, key)
    assert first != second
    assert plain not in first


def test_a_flipped_bit_anywhere_fails_authentication(key: bytes) -> None:
    sealed = bytearray(encrypt(os.urandom(SEGMENT + 100), key))
    for position in (3, 10, 30, 34, HEADER - 1, HEADER + 5, HEADER + SEGMENT + TAG + 3, len(sealed) - 1):
        damaged = bytearray(sealed)
        damaged[position] ^= 0x80
        with pytest.raises(IntegrityError, match="test blob"):
            decrypt(bytes(damaged), key)


def test_a_tampered_segment_size_is_refused_before_it_is_used(key: bytes) -> None:
    """The header's tag is checked first: a size of 4 GiB must never be read for, or allocated."""
    sealed = bytearray(encrypt(os.urandom(5000), key))
    struct.pack_into(">I", sealed, 8 + 16 + 8, 0xFFFF_FFF0)
    source = Counting(bytes(sealed))
    with pytest.raises(IntegrityError, match="fails authentication in its encryption header"):
        DecryptingReader(source, BLOB, "test blob", key=key)
    assert source.read_total <= HEADER
    assert source.largest_request <= HEADER


@pytest.mark.parametrize("cut", ["at-a-segment-boundary", "inside-a-segment", "one-byte", "inside-the-header"])
def test_truncation_is_detected_even_at_a_segment_boundary(key: bytes, cut: str) -> None:
    sealed = encrypt(os.urandom(2 * SEGMENT + 50), key)
    keep = {
        "at-a-segment-boundary": HEADER + SEGMENT + TAG,
        "inside-a-segment": HEADER + SEGMENT + TAG + 10,
        "one-byte": len(sealed) - 1,
        "inside-the-header": HEADER - 3,
    }[cut]
    with pytest.raises(IntegrityError, match=r"fails authentication|truncated"):
        decrypt(sealed[:keep], key)


def test_appending_bytes_is_detected(key: bytes) -> None:
    sealed = encrypt(os.urandom(100), key)
    with pytest.raises(IntegrityError):
        decrypt(sealed + os.urandom(TAG + 10), key)


def test_swapped_segments_are_detected(key: bytes) -> None:
    sealed = encrypt(os.urandom(3 * SEGMENT), key)
    seg = SEGMENT + TAG
    first, second = sealed[HEADER : HEADER + seg], sealed[HEADER + seg : HEADER + 2 * seg]
    swapped = sealed[:HEADER] + second + first + sealed[HEADER + 2 * seg :]
    with pytest.raises(IntegrityError, match="at segment 0"):
        decrypt(swapped, key)


def test_a_blob_moved_to_another_blob_id_or_opened_with_another_key_is_refused(key: bytes) -> None:
    sealed = encrypt(b"belongs to BLOB", key, BLOB)
    with pytest.raises(IntegrityError, match="moved from another blob, or sealed under another key"):
        decrypt(sealed, key, OTHER_BLOB)
    with pytest.raises(IntegrityError, match="fails authentication in its encryption header"):
        decrypt(sealed, os.urandom(32))


def test_no_header_or_a_foreign_header_is_refused(key: bytes) -> None:
    with pytest.raises(IntegrityError, match="truncated: no encryption header"):
        decrypt(b"", key)
    with pytest.raises(IntegrityError, match="truncated: the encryption header ends inside"):
        decrypt(MAGIC_V2 + b"1234", key)
    with pytest.raises(IntegrityError, match="not a drctl encrypted blob"):
        decrypt(b"NOTDRCTL" + bytes(12) + os.urandom(40), key)


def test_encryption_reads_ahead_by_at_most_one_segment(key: bytes) -> None:
    source = Counting(os.urandom(5 * SEGMENT))
    enc = EncryptingReader(source, BLOB, key=key)
    first = read_full(enc, HEADER + 10)
    assert len(first) == HEADER + 10
    assert source.read_total <= 2 * SEGMENT


# -- format 1: sets made before subkeys ---------------------------------------------------------------------------

FORMAT1_KEY = bytes(range(32))  # the key the fixture was sealed with, by drctl at commit 51735f6
FORMAT1_PLAIN = b"drctl format-1 blob, written by drctl 0.1.0 before per-blob subkeys\n" * 30


def test_a_format_1_blob_still_decrypts() -> None:
    sealed = FORMAT1.read_bytes()
    assert sealed.startswith(MAGIC_V1)
    assert decrypt(sealed, FORMAT1_KEY) == FORMAT1_PLAIN
    damaged = bytearray(sealed)
    damaged[-1] ^= 1
    with pytest.raises(IntegrityError, match="fails authentication at segment 0"):
        decrypt(bytes(damaged), FORMAT1_KEY)


def test_a_format_1_header_with_another_segment_size_is_refused_before_it_is_used() -> None:
    """Format 1 has no header tag, so its segment size is pinned to the only one drctl wrote."""
    sealed = bytearray(FORMAT1.read_bytes())
    struct.pack_into(">I", sealed, 16, 0x7FFF_FFFF)
    source = Counting(bytes(sealed))
    with pytest.raises(IntegrityError, match=r"damaged encryption header \(segment size 2147483647\)"):
        DecryptingReader(source, BLOB, "test blob", key=FORMAT1_KEY)
    assert source.largest_request <= 20


# -- format 3: sealed to age recipients ---------------------------------------------------------------------------


@pytest.fixture
def identity() -> tuple[str, str]:
    return new_identity()


def sealed_to(recipient: str, plain: bytes, blob: str = BLOB) -> bytes:
    return EncryptingReader(io.BytesIO(plain), blob, seal_key=sealer((recipient,))).read()


def opened(sealed: bytes, identity_text: str, recipients: tuple[str, ...], blob: str = BLOB) -> bytes:
    opener = IdentitySource(identity_env="ID").opener({"ID": identity_text}, recipients)
    return DecryptingReader(io.BytesIO(sealed), blob, "test blob", key=None, open_key=opener).read()


def test_a_blob_sealed_to_a_recipient_opens_only_with_its_identity(identity: tuple[str, str]) -> None:
    secret, recipient = identity
    plain = os.urandom(SEGMENT + 99)
    sealed = sealed_to(recipient, plain)
    assert sealed.startswith(MAGIC_V3)
    assert opened(sealed, secret, (recipient,)) == plain
    # The writer holds the set's key and the recipient, not an identity: it cannot read what it wrote.
    with pytest.raises(WrongKey, match="encrypted to the set's age recipients"):
        DecryptingReader(io.BytesIO(sealed), BLOB, "test blob", key=os.urandom(32), open_key=None)
    other_secret, _ = new_identity()
    with pytest.raises(WrongKey, match="no age identity given belongs to this set's recipients"):
        opened(sealed, other_secret, (recipient,))


def test_damage_to_a_sealed_key_or_its_length_is_integrity_not_a_wrong_key(identity: tuple[str, str]) -> None:
    secret, recipient = identity
    sealed = sealed_to(recipient, b"data")
    (length,) = struct.unpack(">I", sealed[8:12])
    for position in (12 + 40, 12 + length - 1):
        damaged = bytearray(sealed)
        damaged[position] ^= 0x04
        with pytest.raises(IntegrityError):
            opened(bytes(damaged), secret, (recipient,))
    huge = bytearray(sealed)
    struct.pack_into(">I", huge, 8, 0x7FFF_FFFF)
    source = Counting(bytes(huge))
    with pytest.raises(IntegrityError, match="sealed key of 2147483647 bytes"):
        DecryptingReader(source, BLOB, "t", key=None, open_key=IdentitySource().opener({}, (recipient,)))
    assert source.largest_request <= 8


def test_recipients_are_checked_and_identities_are_never_echoed(identity: tuple[str, str]) -> None:
    secret, recipient = identity
    assert check_recipients([recipient, recipient]) == (recipient,)
    with pytest.raises(InvalidInput, match="'age1nope' is not an age X25519 recipient"):
        check_recipients(["age1nope"])
    mangled = secret[:-3] + "###"
    with pytest.raises(InvalidInput, match="line 1 of environment variable ID is not an age identity") as err:
        opened(sealed_to(recipient, b"x"), mangled, (recipient,))
    assert secret[20:] not in str(err.value)
    with pytest.raises(WrongKey, match="DRCTL_BACKUP_IDENTITY"):
        DecryptingReader(
            io.BytesIO(sealed_to(recipient, b"x")), BLOB, "t", key=None, open_key=IdentitySource().opener({}, ())
        ).read()
