"""The recovery point (manifest) and set settings documents, typed and checked on every load.

A recovery point lists the complete state of the source at the time it was taken: every object with its
size, SHA-256 of the plaintext, source etag/version and the blob that holds it. Restoring any point therefore
needs only that manifest and the blobs it names; ``parent`` records the chain the point was computed against.
Each manifest carries a digest of its own canonical body, so a manifest edited by hand is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import IntegrityError

Mode = Literal["full", "incremental", "differential"]
CopyPath = Literal["streamed", "server-side", "unchanged"]
KeyScheme = Literal["local-aes-256-gcm"]
FORMAT: Literal[1] = 1


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EncryptionSettings(_Doc):
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    key_wrapping: KeyScheme = Field(
        "local-aes-256-gcm", description="how the data key is wrapped (KMS/Key Vault would add schemes)"
    )
    wrapped_key: str = Field(description="the set's data key, AES-256-GCM-wrapped by the key-encryption key, b64")
    kek_id: str = Field(description="a fingerprint of the key-encryption key, to name the key a set needs")


class SetConfig(_Doc):
    format: Literal[1] = FORMAT
    created: datetime
    compression: Literal["zstd"] | None = None
    encryption: EncryptionSettings | None = None


class ObjectEntry(_Doc):
    key: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    blob: str = Field(pattern=r"^[0-9a-f]{64}$")
    stored_size: int = Field(ge=0)
    source_etag: str | None = None
    source_version: str | None = None
    source_modified: datetime
    source_md5: str | None = None
    written_by: str = Field(description="the id of the recovery point whose run wrote the blob")


class Totals(_Doc):
    objects: int
    bytes: int
    objects_transferred: int
    bytes_transferred: int
    objects_unchanged: int


class RecoveryPoint(_Doc):
    format: Literal[1] = FORMAT
    id: str
    started: datetime = Field(description="when the source was listed: the data is at least this recent")
    created: datetime = Field(description="when the point was sealed; it exists in the set from then on")
    mode: Mode
    parent: str | None
    source: str
    drctl_version: str
    compression: Literal["zstd"] | None
    encryption: Literal["AES-256-GCM"] | None
    objects: tuple[ObjectEntry, ...]
    totals: Totals
    paths: dict[CopyPath, int]


def _body(point: RecoveryPoint) -> bytes:
    return json.dumps(point.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def seal(point: RecoveryPoint, mac_key: bytes | None) -> bytes:
    """Serialize with a digest of the body: HMAC under the set's MAC key when encrypted, else SHA-256."""
    body = _body(point)
    digest = _digest(body, mac_key)
    # The canonical body is embedded as it is: re-encoding a manifest of many thousand objects costs more than
    # the copy of an unchanged set.
    return b'{"digest":"' + digest.encode() + b'","point":' + body + b"}"


def _sealed_body(raw: bytes) -> tuple[str, bytes] | None:
    """The digest and the body bytes of a manifest exactly as ``seal`` wrote it, or None for any other layout."""
    head, tail = b'{"digest":"', b"}"
    end = len(head) + 64
    if not (raw.startswith(head) and raw.endswith(tail) and raw[end : end + 10] == b'","point":'):
        return None
    return raw[len(head) : end].decode("ascii", "replace"), raw[end + 10 : -len(tail)]


def _digest(body: bytes, mac_key: bytes | None) -> str:
    return hmac.new(mac_key, body, "sha256").hexdigest() if mac_key else hashlib.sha256(body).hexdigest()


def unseal(raw: bytes, name: str, mac_key: bytes | None) -> RecoveryPoint:
    """Parse and check a manifest; anything edited, truncated or malformed raises ``IntegrityError``."""
    malformed = IntegrityError(
        f"recovery point {name} is not a valid manifest (malformed or truncated); restore it from a copy "
        "or remove it with `drctl backup prune`"
    )
    sealed = _sealed_body(raw)
    if sealed is not None and hmac.compare_digest(_digest(sealed[1], mac_key), sealed[0]):
        # The bytes are the canonical body the digest was made over: checking them as they are spares
        # re-encoding a manifest of many thousand objects just to hash it again.
        try:
            return RecoveryPoint.model_validate_json(sealed[1])
        except ValidationError as exc:
            raise malformed from exc
    try:
        doc = json.loads(raw)
        point = RecoveryPoint.model_validate(doc["point"])
        digest = str(doc["digest"])
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise malformed from exc
    if not hmac.compare_digest(_digest(_body(point), mac_key), digest):
        raise IntegrityError(
            f"recovery point {name} fails its checksum: it was edited or corrupted after it was written; "
            "restore it from a copy, or remove it and take a new backup"
        )
    return point
