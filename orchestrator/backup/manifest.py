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
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Literal

from orchestrator.backup.strict_json import HEX64, DocumentError, Fields, moment_to_json, parse_json
from orchestrator.errors import IntegrityError

Mode = Literal["full", "incremental", "differential"]
CopyPath = Literal["streamed", "server-side", "unchanged"]
KeyScheme = Literal["local-aes-256-gcm"]
FORMAT: Literal[1] = 1
MODES: tuple[Mode, ...] = ("full", "incremental", "differential")
COPY_PATHS: tuple[CopyPath, ...] = ("streamed", "server-side", "unchanged")
KEY_SCHEMES: tuple[KeyScheme, ...] = ("local-aes-256-gcm",)
# The values a closed field may take, as the tuples the reader checks against.
_AES_GCM: tuple[Literal["AES-256-GCM"]] = ("AES-256-GCM",)
_ZSTD: tuple[Literal["zstd"]] = ("zstd",)


@dataclass(frozen=True, slots=True)
class EncryptionSettings:
    wrapped_key: str
    """The set's data key, AES-256-GCM-wrapped by the key-encryption key, base64."""
    kek_id: str
    """A fingerprint of the key-encryption key, to name the key a set needs."""
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    key_wrapping: KeyScheme = "local-aes-256-gcm"
    """How the data key is wrapped (KMS or Key Vault would add schemes)."""

    def to_doc(self) -> dict[str, object]:
        return {
            "algorithm": self.algorithm,
            "key_wrapping": self.key_wrapping,
            "wrapped_key": self.wrapped_key,
            "kek_id": self.kek_id,
        }

    @classmethod
    def from_fields(cls, f: Fields) -> EncryptionSettings:
        return cls(
            algorithm=f.choice("algorithm", _AES_GCM, default="AES-256-GCM"),
            key_wrapping=f.choice("key_wrapping", KEY_SCHEMES, default="local-aes-256-gcm"),
            wrapped_key=f.text("wrapped_key"),
            kek_id=f.text("kek_id"),
        )


@dataclass(frozen=True, slots=True)
class SetConfig:
    created: datetime
    compression: Literal["zstd"] | None = None
    encryption: EncryptionSettings | None = None
    format: Literal[1] = FORMAT

    def to_json(self) -> bytes:
        doc = {
            "format": self.format,
            "created": moment_to_json(self.created),
            "compression": self.compression,
            "encryption": self.encryption.to_doc() if self.encryption else None,
        }
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SetConfig:
        """Raises ``DocumentError`` (a ValueError) naming the first field that is not as drctl writes it."""
        f = Fields(parse_json(raw, "settings"), "settings", _KEYS[SetConfig])
        f.format_version("format", FORMAT)
        encryption = f.nested("encryption", _KEYS[EncryptionSettings])
        return cls(
            created=f.moment("created"),
            compression=f.choice_or_none("compression", _ZSTD),
            encryption=EncryptionSettings.from_fields(encryption) if encryption else None,
        )


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    key: str
    size: int
    sha256: str
    blob: str
    stored_size: int
    source_modified: datetime
    written_by: str
    """The id of the recovery point whose run wrote the blob."""
    source_etag: str | None = None
    source_version: str | None = None
    source_md5: str | None = None

    def to_doc(self) -> dict[str, object]:
        return {
            "key": self.key,
            "size": self.size,
            "sha256": self.sha256,
            "blob": self.blob,
            "stored_size": self.stored_size,
            "source_etag": self.source_etag,
            "source_version": self.source_version,
            "source_modified": moment_to_json(self.source_modified),
            "source_md5": self.source_md5,
            "written_by": self.written_by,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_doc(), separators=(",", ":"))

    @classmethod
    def from_doc(cls, doc: object, where: str) -> ObjectEntry:
        f = Fields(doc, where, _KEYS[ObjectEntry])
        return cls(
            key=f.text("key"),
            size=f.integer("size", minimum=0),
            sha256=f.text("sha256", pattern=HEX64),
            blob=f.text("blob", pattern=HEX64),
            stored_size=f.integer("stored_size", minimum=0),
            source_etag=f.text_or_none("source_etag"),
            source_version=f.text_or_none("source_version"),
            source_modified=f.moment("source_modified"),
            source_md5=f.text_or_none("source_md5"),
            written_by=f.text("written_by"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> ObjectEntry:
        return cls.from_doc(parse_json(raw, "entry"), "entry")


@dataclass(frozen=True, slots=True)
class Totals:
    objects: int
    bytes: int
    objects_transferred: int
    bytes_transferred: int
    objects_unchanged: int

    def to_doc(self) -> dict[str, object]:
        return {
            "objects": self.objects,
            "bytes": self.bytes,
            "objects_transferred": self.objects_transferred,
            "bytes_transferred": self.bytes_transferred,
            "objects_unchanged": self.objects_unchanged,
        }

    @classmethod
    def from_fields(cls, f: Fields) -> Totals:
        return cls(
            objects=f.integer("objects"),
            bytes=f.integer("bytes"),
            objects_transferred=f.integer("objects_transferred"),
            bytes_transferred=f.integer("bytes_transferred"),
            objects_unchanged=f.integer("objects_unchanged"),
        )


@dataclass(frozen=True, slots=True)
class RecoveryPoint:
    id: str
    started: datetime
    """When the source was listed: the data is at least this recent."""
    created: datetime
    """When the point was sealed; it exists in the set from then on."""
    mode: Mode
    parent: str | None
    source: str
    drctl_version: str
    compression: Literal["zstd"] | None
    encryption: Literal["AES-256-GCM"] | None
    objects: tuple[ObjectEntry, ...]
    totals: Totals
    paths: dict[CopyPath, int]
    format: Literal[1] = FORMAT

    def to_doc(self) -> dict[str, object]:
        return {
            "format": self.format,
            "id": self.id,
            "started": moment_to_json(self.started),
            "created": moment_to_json(self.created),
            "mode": self.mode,
            "parent": self.parent,
            "source": self.source,
            "drctl_version": self.drctl_version,
            "compression": self.compression,
            "encryption": self.encryption,
            "objects": [o.to_doc() for o in self.objects],
            "totals": self.totals.to_doc(),
            "paths": dict(self.paths),
        }

    @classmethod
    def from_doc(cls, doc: object) -> RecoveryPoint:
        f = Fields(doc, "point", _KEYS[RecoveryPoint])
        f.format_version("format", FORMAT)
        where = f.where("objects")
        return cls(
            id=f.text("id"),
            started=f.moment("started"),
            created=f.moment("created"),
            mode=f.choice("mode", MODES),
            parent=f.text_or_none("parent", required=True),
            source=f.text("source"),
            drctl_version=f.text("drctl_version"),
            compression=f.choice_or_none("compression", _ZSTD, required=True),
            encryption=f.choice_or_none("encryption", _AES_GCM, required=True),
            objects=tuple(ObjectEntry.from_doc(o, f"{where}[{i}]") for i, o in enumerate(f.array("objects"))),
            totals=Totals.from_fields(f.nested_required("totals", _KEYS[Totals])),
            paths=f.counts("paths", COPY_PATHS),
        )


# A document's keys are its class's field names.
_KEYS: dict[type, frozenset[str]] = {
    doc_class: frozenset(f.name for f in fields(doc_class))
    for doc_class in (EncryptionSettings, SetConfig, ObjectEntry, Totals, RecoveryPoint)
}


_ENVELOPE = frozenset({"digest", "point"})


def _body(point: RecoveryPoint) -> bytes:
    return json.dumps(point.to_doc(), sort_keys=True, separators=(",", ":")).encode()


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

    def malformed(problem: str) -> IntegrityError:
        return IntegrityError(
            f"recovery point {name} is not a valid manifest ({problem}); restore it from a copy "
            "or remove it with `drctl backup prune`"
        )

    sealed = _sealed_body(raw)
    if sealed is not None and hmac.compare_digest(_digest(sealed[1], mac_key), sealed[0]):
        # The bytes are the canonical body the digest was made over: checking them as they are spares
        # re-encoding a manifest of many thousand objects just to hash it again.
        try:
            return RecoveryPoint.from_doc(parse_json(sealed[1], "point"))
        except DocumentError as exc:
            raise malformed(str(exc)) from exc
    try:
        envelope = Fields(parse_json(raw, "manifest"), "manifest", _ENVELOPE)
        digest = envelope.text("digest")
        point = RecoveryPoint.from_doc(envelope.value("point"))
    except DocumentError as exc:
        raise malformed(str(exc)) from exc
    if not hmac.compare_digest(_digest(_body(point), mac_key), digest):
        raise IntegrityError(
            f"recovery point {name} fails its checksum: it was edited or corrupted after it was written; "
            "restore it from a copy, or remove it and take a new backup"
        )
    return point
