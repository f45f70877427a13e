"""Client-side encryption of backup sets: key material, key sources and key wrapping (the blob stream is in
test_sealed_stream.py)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from orchestrator.backup import crypto
from orchestrator.backup.crypto import (
    KeySource,
    LocalKeyWrapper,
    SetKeys,
    kek_id,
    parse_key_material,
    unwrap_key,
    wrap_key,
)
from orchestrator.errors import IntegrityError, InvalidInput, WrongKey


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


def test_a_damaged_key_id_with_the_right_key_is_damage_not_a_wrong_key(key: bytes) -> None:
    wrapper = LocalKeyWrapper(key)
    wrapped = wrapper.wrap(crypto.new_data_key())
    damaged_id = "a" + kek_id(key)[1:] if not kek_id(key).startswith("a") else "b" + kek_id(key)[1:]
    with pytest.raises(IntegrityError, match="the settings file is damaged") as info:
        unwrap_key(wrapper, wrapped, damaged_id)
    assert key.hex() not in str(info.value)


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
