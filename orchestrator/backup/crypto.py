"""Client-side encryption of backup sets: AES-256-GCM, a data key per set wrapped by a key-encryption key (KEK).

The KEK comes from a key file or an environment variable (32 bytes, raw or as base64 or hex). KMS and Key
Vault wrapping would plug in as further ``KeySource``s; LocalStack's KMS does not run here, so the file and
environment sources are the tested ones.

Blobs are sealed by ``sealed_stream`` (a subkey per blob, as Tink's streaming AEAD); a set made with age
recipients seals each blob's key to them instead (``recipients``), so writers cannot read what they wrote.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from orchestrator.backup.manifest import KeyScheme
from orchestrator.backup.recipients import IdentitySource
from orchestrator.backup.sealed_stream import OpenKey
from orchestrator.errors import IntegrityError, InvalidInput, WrongKey

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _aead(key: bytes) -> AESGCM:
    # cryptography takes about 0.01 s to import, and only an encrypted set needs it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _invalid_tag() -> type[Exception]:
    """The AEAD's authentication failure; an ``except`` evaluates this only when something was raised."""
    from cryptography.exceptions import InvalidTag

    return InvalidTag


_WRAP_AAD = b"drctl data key v1"


def parse_key_material(raw: bytes, origin: str) -> bytes:
    """32 bytes of key, given as base64 or hex text, or as 32 raw bytes that are not text.

    32 printable characters that decode to nothing of the right size are refused: that is a passphrase (or
    the hex of a 16-byte key), and using it as raw key material would silently weaken the set's encryption.
    ``origin`` names where the key came from, never the key.
    """
    text = raw.strip()
    for decode in (base64.b64decode, binascii.unhexlify):
        try:
            key = decode(text)
        except (binascii.Error, ValueError):
            continue
        if len(key) == 32:
            return key
    if len(raw) == 32 and not raw.isascii():
        return raw
    raise InvalidInput(
        f"the key in {origin} is not 32 bytes of key (base64, hex, or raw binary); create one with "
        "`drctl backup keygen FILE`"
    )


class KeyWrapper(Protocol):
    """Wraps and unwraps a set's data key under a key-encryption key held somewhere else.

    The local wrapper below holds the KEK in memory; a KMS or Key Vault wrapper would call the service's
    encrypt/decrypt (or wrapKey/unwrapKey) instead and name its scheme, e.g. ``aws-kms``.
    """

    @property
    def scheme(self) -> KeyScheme:
        """How the data key is wrapped; recorded in the set so the right wrapper is asked to unwrap it."""
        ...

    @property
    def key_id(self) -> str:
        """A public name of the KEK (a fingerprint or a key ARN), recorded in the set."""
        ...

    def wrap(self, data_key: bytes) -> str:
        """The data key sealed under the KEK, as text."""
        ...

    def unwrap(self, wrapped: str) -> bytes:
        """The data key. Raises ``IntegrityError`` if the wrapped key fails authentication."""
        ...


@dataclass(frozen=True)
class LocalKeyWrapper:
    """AES-256-GCM key wrapping under a KEK read from a file or the environment."""

    kek: bytes = field(repr=False)

    @property
    def scheme(self) -> KeyScheme:
        return "local-aes-256-gcm"

    @property
    def key_id(self) -> str:
        return kek_id(self.kek)

    def wrap(self, data_key: bytes) -> str:
        return wrap_key(self.kek, data_key)

    def unwrap(self, wrapped: str) -> bytes:
        try:
            blob = base64.b64decode(wrapped, validate=True)
            return _aead(self.kek).decrypt(blob[:12], blob[12:], _WRAP_AAD)
        except (_invalid_tag(), binascii.Error, ValueError) as exc:
            raise IntegrityError("the set's wrapped data key fails authentication: drctl-set.json is corrupt") from exc


@dataclass(frozen=True)
class KeySource:
    """Where the key-encryption key comes from (a file or an environment variable), and the age identities
    that open a set made with recipients (read only when such a blob is opened)."""

    key_file: Path | None = None
    key_env: str | None = None
    identities: IdentitySource = field(default_factory=IdentitySource)

    def opener(self, env: Mapping[str, str], recipients: tuple[str, ...]) -> OpenKey:
        return self.identities.opener(env, recipients)

    def wrapper(self, env: Mapping[str, str]) -> KeyWrapper:
        return LocalKeyWrapper(self.load(env))

    def load(self, env: Mapping[str, str]) -> bytes:
        if self.key_file is not None:
            try:
                return parse_key_material(self.key_file.read_bytes(), f"key file {self.key_file}")
            except OSError as exc:
                # The path is echoed only when it cannot be the key itself pasted by mistake.
                shown = "given" if _looks_like_key(str(self.key_file)) else str(self.key_file)
                raise InvalidInput(f"cannot read the key file {shown}: {exc.strerror}; check the path") from exc
        if self.key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.key_env):
            raise InvalidInput("--key-env takes the NAME of an environment variable, not a key; export the key in it")
        if self.key_env:
            value = env.get(self.key_env)
            if not value:
                raise WrongKey(f"environment variable {self.key_env} is not set; export the set's key in it")
            return parse_key_material(value.encode(), f"environment variable {self.key_env}")
        raise WrongKey("this backup set is encrypted; pass --key-file PATH or --key-env VAR")

    @property
    def given(self) -> bool:
        return self.key_file is not None or bool(self.key_env)


def _looks_like_key(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9+/=_-]{32,}", text)) and not text.startswith(("/", ".", "~"))


def kek_id(kek: bytes) -> str:
    """A public fingerprint that names a key without revealing it."""
    return hashlib.sha256(b"drctl kek id\0" + kek).hexdigest()[:16]


def new_data_key() -> bytes:
    return secrets.token_bytes(32)


def wrap_key(kek: bytes, data_key: bytes) -> str:
    nonce = os.urandom(12)
    return base64.b64encode(nonce + _aead(kek).encrypt(nonce, data_key, _WRAP_AAD)).decode()


def unwrap_key(wrapper: KeyWrapper, wrapped: str, expected_key_id: str) -> bytes:
    """Unwrap a set's data key, refusing a KEK other than the one the set was made with, by name. A recorded
    id that does not match, while the key given does open the wrapped data key, is damage to the settings
    file, not a wrong key: the wrapped key's authentication proves the key right."""
    if wrapper.key_id == expected_key_id:
        return wrapper.unwrap(wrapped)
    try:
        wrapper.unwrap(wrapped)
    except IntegrityError:
        raise WrongKey(
            f"wrong key for this backup set: it was made with key id {expected_key_id}, the key given has id "
            f"{wrapper.key_id}; pass the set's own key"
        ) from None
    raise IntegrityError(
        f"drctl-set.json records key id {expected_key_id!r}, but the key given (id {wrapper.key_id}) opens the "
        "set's data key: the settings file is damaged; restore it from a copy, or set kek_id to "
        f"{wrapper.key_id}"
    )


@dataclass(frozen=True)
class SetKeys:
    """Keys derived from a set's data key, one per purpose."""

    blob_key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)

    @classmethod
    def derive(cls, data_key: bytes) -> SetKeys:
        return cls(
            blob_key=hmac.new(data_key, b"drctl blob encryption", "sha256").digest(),
            mac_key=hmac.new(data_key, b"drctl manifest mac", "sha256").digest(),
        )
