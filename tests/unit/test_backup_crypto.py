"""Client-side encryption of backup sets: key material, key sources, key wrapping and the segmented AEAD stream."""

from __future__ import annotations

import base64
import io
import os
import struct
from pathlib import Path

import pytest

from orchestrator.backup import crypto
from orchestrator.backup.crypto import (
    MAGIC,
    SEGMENT,
    TAG,
    DecryptingReader,
    EncryptingReader,
    KeySource,
    LocalKeyWrapper,
    SetKeys,
    kek_id,
    parse_key_material,
    unwrap_key,
    wrap_key,
)
from orchestrator.errors import IntegrityError, InvalidInput, WrongKey
from orchestrator.providers.streams import read_full

HEADER = struct.calcsize(">8s8sI")
BLOB = "ab" * 32
OTHER_BLOB = "cd" * 32


class Trickle:
    """A source that hands out at most ``step`` bytes per read, as network streams do."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._step = step

    def read(self, size: int = -1, /) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        out, self._data = self._data[:n], self._data[n:]
        return out


def encrypt(plain: bytes, key: bytes, blob: str = BLOB) -> bytes:
    return EncryptingReader(io.BytesIO(plain), key, blob).read()


def decrypt(sealed: bytes, key: bytes, blob: str = BLOB) -> bytes:
    return DecryptingReader(io.BytesIO(sealed), key, blob, "test blob").read()


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


# -- key material --------------------------------------------------------------------------------------------


def test_key_material_is_accepted_raw_base64_or_hex_with_surrounding_whitespace() -> None:
    raw = os.urandom(32)
    assert parse_key_material(raw, "x") == raw
    assert parse_key_material(base64.b64encode(raw), "x") == raw
    assert parse_key_material(base64.b64encode(raw) + b"\n", "x") == raw
    assert parse_key_material(b"  " + raw.hex().encode() + b"\r\n", "x") == raw
    assert parse_key_material(raw.hex().upper().encode(), "x") == raw


def test_raw_key_that_starts_or_ends_with_whitespace_bytes_is_kept_whole() -> None:
    raw = b"\n" + os.urandom(30) + b" "
    assert parse_key_material(raw, "x") == raw


@pytest.mark.parametrize(
    "material",
    [b"", b"short", os.urandom(31), os.urandom(33), base64.b64encode(os.urandom(16)), os.urandom(20).hex().encode()],
    ids=["empty", "text", "31-bytes", "33-bytes", "base64-of-16", "hex-of-20"],
)
def test_key_material_of_the_wrong_length_is_refused_without_echoing_it(material: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"the key in key file k\.bin is not 32 bytes") as info:
        parse_key_material(material, "key file k.bin")
    assert "keygen" in str(info.value)
    if len(material) >= 4:
        assert material.decode(errors="replace") not in str(info.value)


@pytest.mark.parametrize("text", [os.urandom(16).hex().encode(), b"correct horse battery staple 123"])
def test_32_characters_of_text_are_refused_not_taken_as_a_raw_key(text: bytes) -> None:
    """The hex of a 16-byte key, or a passphrase, would silently be weak key material if taken as raw bytes."""
    assert len(text) == 32
    with pytest.raises(InvalidInput, match="not 32 bytes of key"):
        parse_key_material(text, "x")


def test_key_source_reads_a_file(tmp_path: Path) -> None:
    raw = os.urandom(32)
    path = tmp_path / "k"
    path.write_text(base64.b64encode(raw).decode() + "\n")
    source = KeySource(key_file=path)
    assert source.given
    assert source.load({}) == raw


def test_key_source_gives_a_local_wrapper_of_the_loaded_key() -> None:
    raw = os.urandom(32)
    wrapper = KeySource(key_env="MY_KEY").wrapper({"MY_KEY": raw.hex()})
    assert wrapper.key_id == kek_id(raw)
    assert unwrap_key(wrapper, wrap_key(raw, b"d" * 32), kek_id(raw)) == b"d" * 32


def test_key_source_reads_an_environment_variable() -> None:
    raw = os.urandom(32)
    source = KeySource(key_env="MY_KEY")
    assert source.given
    assert source.load({"MY_KEY": base64.b64encode(raw).decode()}) == raw


def test_unset_or_empty_key_variable_is_a_wrong_key_error_naming_the_variable() -> None:
    for env in ({}, {"MY_KEY": ""}):
        with pytest.raises(WrongKey, match="environment variable MY_KEY is not set"):
            KeySource(key_env="MY_KEY").load(env)


def test_no_key_source_at_all_is_a_wrong_key_error_naming_both_options() -> None:
    source = KeySource()
    assert not source.given
    with pytest.raises(WrongKey, match=r"pass --key-file PATH or --key-env VAR"):
        source.load({"DRCTL_BACKUP_KEY": base64.b64encode(os.urandom(32)).decode()})


def test_unreadable_key_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"cannot read the key file .*missing\.key"):
        KeySource(key_file=tmp_path / "missing.key").load({})


def test_key_file_takes_precedence_over_the_variable(tmp_path: Path) -> None:
    from_file, from_env = os.urandom(32), os.urandom(32)
    path = tmp_path / "k"
    path.write_bytes(from_file)
    source = KeySource(key_file=path, key_env="MY_KEY")
    assert source.load({"MY_KEY": from_env.hex()}) == from_file


# -- key ids and wrapping --------------------------------------------------------------------------------------------


def test_kek_id_is_stable_distinct_and_reveals_nothing(key: bytes) -> None:
    assert kek_id(key) == kek_id(bytes(key))
    assert kek_id(key) != kek_id(os.urandom(32))
    assert len(kek_id(key)) == 16
    assert kek_id(key) not in (key.hex(), base64.b64encode(key).decode())
    assert kek_id(key) not in key.hex()


def test_wrapped_data_key_unwraps_only_with_its_kek(key: bytes) -> None:
    data_key = crypto.new_data_key()
    assert len(data_key) == 32
    wrapper = LocalKeyWrapper(key)
    assert (wrapper.scheme, wrapper.key_id) == ("local-aes-256-gcm", kek_id(key))
    assert key.hex() not in repr(wrapper)
    wrapped = wrapper.wrap(data_key)
    assert data_key not in base64.b64decode(wrapped)
    assert wrap_key(key, data_key) != wrapped  # a fresh nonce every time
    assert unwrap_key(wrapper, wrapped, kek_id(key)) == data_key
    assert unwrap_key(LocalKeyWrapper(key), wrap_key(key, data_key), kek_id(key)) == data_key

    other = os.urandom(32)
    with pytest.raises(WrongKey, match=f"made with key id {kek_id(key)}.*has id {kek_id(other)}") as info:
        unwrap_key(LocalKeyWrapper(other), wrapped, kek_id(key))
    assert key.hex() not in str(info.value)
    assert other.hex() not in str(info.value)


def test_tampered_wrapped_key_fails_authentication(key: bytes) -> None:
    raw = bytearray(base64.b64decode(wrap_key(key, crypto.new_data_key())))
    raw[20] ^= 0x01
    with pytest.raises(IntegrityError, match=r"drctl-set\.json is corrupt"):
        unwrap_key(LocalKeyWrapper(key), base64.b64encode(bytes(raw)).decode(), kek_id(key))


def test_set_keys_are_distinct_per_purpose_and_per_data_key() -> None:
    data_key = os.urandom(32)
    keys = SetKeys.derive(data_key)
    assert keys == SetKeys.derive(data_key)
    assert len({keys.blob_key, keys.mac_key, data_key}) == 3
    assert SetKeys.derive(os.urandom(32)).blob_key != keys.blob_key


# -- the segmented stream ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 2 * SEGMENT + 7])
def test_stream_round_trips_every_size_around_segment_boundaries(key: bytes, size: int) -> None:
    plain = os.urandom(size)
    sealed = encrypt(plain, key)
    segments = max(1, -(-size // SEGMENT))  # a full last segment is the last one: no empty segment after it
    assert len(sealed) == HEADER + size + segments * TAG
    assert sealed.startswith(MAGIC)
    assert decrypt(sealed, key) == plain


def test_stream_works_through_short_reads_on_both_sides(key: bytes) -> None:
    plain = os.urandom(SEGMENT + 12_345)
    enc = EncryptingReader(Trickle(plain, 4096), key, BLOB)
    sealed = b"".join(iter(lambda: enc.read(777), b""))
    dec = DecryptingReader(Trickle(sealed, 5000), key, BLOB, "t")
    assert b"".join(iter(lambda: dec.read(1234), b"")) == plain


def test_same_plaintext_encrypts_differently_each_time(key: bytes) -> None:
    plain = b"same bytes" * 100
    first, second = encrypt(plain, key), encrypt(plain, key)
    assert first != second
    assert plain not in first


def test_a_flipped_bit_anywhere_fails_authentication(key: bytes) -> None:
    sealed = bytearray(encrypt(os.urandom(SEGMENT + 100), key))
    for position in (HEADER + 5, HEADER + SEGMENT + TAG + 3, len(sealed) - 1):
        damaged = bytearray(sealed)
        damaged[position] ^= 0x80
        with pytest.raises(IntegrityError, match="test blob fails authentication"):
            decrypt(bytes(damaged), key)


def test_a_damaged_header_nonce_fails_authentication(key: bytes) -> None:
    sealed = bytearray(encrypt(b"data", key))
    sealed[len(MAGIC) + 2] ^= 0x01
    with pytest.raises(IntegrityError, match="fails authentication at segment 0"):
        decrypt(bytes(sealed), key)


@pytest.mark.parametrize("cut", ["at-a-segment-boundary", "inside-a-segment", "one-byte"])
def test_truncation_is_detected_even_at_a_segment_boundary(key: bytes, cut: str) -> None:
    sealed = encrypt(os.urandom(2 * SEGMENT + 50), key)
    keep = {
        "at-a-segment-boundary": HEADER + SEGMENT + TAG,
        "inside-a-segment": HEADER + SEGMENT + TAG + 10,
        "one-byte": len(sealed) - 1,
    }[cut]
    with pytest.raises(IntegrityError, match="fails authentication"):
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


def test_a_blob_moved_to_another_blob_id_is_refused(key: bytes) -> None:
    sealed = encrypt(b"belongs to BLOB", key, BLOB)
    with pytest.raises(IntegrityError):
        decrypt(sealed, key, OTHER_BLOB)


def test_the_wrong_key_is_refused(key: bytes) -> None:
    with pytest.raises(IntegrityError):
        decrypt(encrypt(b"secret", key), os.urandom(32))


def test_no_header_or_a_foreign_header_is_refused(key: bytes) -> None:
    with pytest.raises(IntegrityError, match="truncated: no encryption header"):
        decrypt(b"", key)
    with pytest.raises(IntegrityError, match="truncated: no encryption header"):
        decrypt(MAGIC + b"1234", key)
    with pytest.raises(IntegrityError, match="not a drctl encrypted blob"):
        decrypt(b"NOTDRCTL" + bytes(12) + os.urandom(40), key)


def test_encryption_reads_ahead_by_at_most_one_segment(key: bytes) -> None:
    class Counting:
        def __init__(self, size: int) -> None:
            self.source = io.BytesIO(os.urandom(size))
            self.read_total = 0

        def read(self, size: int = -1, /) -> bytes:
            data = self.source.read(size)
            self.read_total += len(data)
            return data

    source = Counting(5 * SEGMENT)
    enc = EncryptingReader(source, key, BLOB)
    first = read_full(enc, HEADER + 10)
    assert len(first) == HEADER + 10
    assert source.read_total <= 2 * SEGMENT
