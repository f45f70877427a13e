"""The recovery point (manifest), set settings and journal entry documents: pydantic models, checked on every load.

A recovery point lists the complete state of the source at the time it was taken: every object with its
size, SHA-256 of the plaintext, source etag/version and the blob that holds it. Restoring any point therefore
needs only that manifest and the blobs it names; ``parent`` records the chain the point was computed against.
Each manifest carries a digest of its own canonical body, so a manifest edited by hand is refused.

drctl writes these documents and reads them back, so the models are strict (the same library as the runbooks,
without its coercion): anything that is not exactly what drctl writes (a missing or unknown key, a number as a
string, a bool as a count, another timestamp form) is refused with a ``DocumentError`` naming the field.
Serialising stays explicit (``moment_to_json`` and ``json.dumps``): every manifest so far was written in that
form and its digest covers the bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from orchestrator.errors import IntegrityError

Mode = Literal["full", "incremental", "differential"]
CopyPath = Literal["streamed", "server-side", "unchanged"]
KeyScheme = Literal["local-aes-256-gcm"]
FORMAT: Literal[1] = 1

# The form drctl writes (``moment_to_json``). pydantic's own datetime parsing would also take unix numbers,
# dates without a time and other separators, and ``datetime.fromisoformat`` week dates, basic format and
# hour-only times: none of which drctl writes.
_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?")


class DocumentError(ValueError):
    """A document that is not the shape drctl writes; the message names the field."""


def moment_to_json(value: datetime) -> str:
    """ISO 8601 with ``Z`` for UTC: the form every manifest so far was written in (its digest covers it)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _moment(value: object) -> object:
    if isinstance(value, datetime):  # built in code rather than read from a document
        return value
    if isinstance(value, str) and _MOMENT.fullmatch(value):
        # A month 13 or an hour 25 raises ValueError, which pydantic reports against the field.
        return datetime.fromisoformat(value)
    raise PydanticCustomError("moment", "expected an ISO 8601 date and time such as 2026-11-26T14:31:05Z")


def _format_number(value: object) -> object:
    # A Literal of an int takes true and 1.0 even in strict mode; drctl writes neither.
    if type(value) is not int:
        raise PydanticCustomError("format", "expected format {format}", {"format": FORMAT})
    return value


Moment = Annotated[datetime, BeforeValidator(_moment), PlainSerializer(moment_to_json, when_used="json")]
Format = Annotated[Literal[1], BeforeValidator(_format_number)]
Count = Annotated[int, Field(ge=0)]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Document(BaseModel):
    """Frozen, compared by value, no unknown keys and no coercion. Fields are declared in the order drctl
    writes them: ``to_doc`` follows it, and documents not written with sorted keys depend on it."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    def to_doc(self) -> dict[str, object]:
        return self.model_dump(mode="json")

    @classmethod
    def _read(cls, raw: str | bytes, root: str) -> Self:
        """Raises ``DocumentError`` (a ValueError) naming the first field that is not as drctl writes it."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise _document_error(exc, root) from exc


class EncryptionSettings(_Document):
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    key_wrapping: KeyScheme = "local-aes-256-gcm"
    """How the data key is wrapped (KMS or Key Vault would add schemes)."""
    wrapped_key: str
    """The set's data key, AES-256-GCM-wrapped by the key-encryption key, base64."""
    kek_id: str
    """A fingerprint of the key-encryption key, to name the key a set needs."""
    recipients: tuple[str, ...] = ()
    """age X25519 recipients: when given, each blob's key is sealed to them, so only an identity reads data
    (the key-encryption key still authenticates the recovery points)."""


class SetConfig(_Document):
    format: Format = FORMAT
    created: Moment
    compression: Literal["zstd"] | None = None
    encryption: EncryptionSettings | None = None

    def to_json(self) -> bytes:
        return json.dumps(self.to_doc(), indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SetConfig:
        return cls._read(raw, "settings")


class ObjectEntry(_Document):
    key: str
    size: Count
    sha256: Hex64
    blob: Hex64
    stored_size: Count
    source_etag: str | None = None
    source_version: str | None = None
    source_modified: Moment
    source_md5: str | None = None
    written_by: str
    """The id of the recovery point whose run wrote the blob (in the journal: the run's id)."""
    stored_sha256: Hex64 | None = None
    """SHA-256 of the blob's stored bytes, where nothing else authenticates them: a compressed set without
    encryption (some damage to a zstd frame's header decodes to the same bytes, so the plaintext hash alone
    would miss it). Left out of the document when absent, so entries written before it keep their digest."""

    @model_serializer(mode="wrap")
    def _without_absent_stored_hash(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        doc: dict[str, object] = handler(self)
        if doc.get("stored_sha256") is None:
            doc.pop("stored_sha256", None)
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_doc(), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ObjectEntry:
        return cls._read(raw, "entry")


class Totals(_Document):
    objects: int
    bytes: int
    objects_transferred: int
    bytes_transferred: int
    objects_unchanged: int


def totals_of(objects: tuple[ObjectEntry, ...], point_id: str, objects_unchanged: int) -> Totals:
    """A point's totals; what ``point_id`` wrote is what its run transferred."""
    return Totals(
        objects=len(objects),
        bytes=sum(e.size for e in objects),
        objects_transferred=sum(1 for e in objects if e.written_by == point_id),
        bytes_transferred=sum(e.size for e in objects if e.written_by == point_id),
        objects_unchanged=objects_unchanged,
    )


class RecoveryPoint(_Document):
    format: Format = FORMAT
    id: str
    started: Moment
    """When the source was listed: the data is at least this recent."""
    created: Moment
    """When the point was sealed; it exists in the set from then on."""
    mode: Mode
    # Required even when null: a point always states whether it has a parent, compression and encryption.
    parent: str | None
    source: str
    drctl_version: str
    compression: Literal["zstd"] | None
    encryption: Literal["AES-256-GCM"] | None
    objects: tuple[ObjectEntry, ...]
    totals: Totals
    paths: dict[CopyPath, int]

    @classmethod
    def from_json(cls, raw: str | bytes) -> RecoveryPoint:
        """The point document alone, as embedded in a sealed manifest."""
        return cls._read(raw, "point")


class _Sealed(_Document):
    """A manifest as another tool may have re-encoded it: the digest is then checked over the rebuilt body."""

    digest: str
    point: RecoveryPoint


# -- errors -------------------------------------------------------------------------------------------------


def _document_error(exc: ValidationError, root: str) -> DocumentError:
    error = exc.errors(include_url=False)[0]
    loc, kind = error["loc"], error["type"]
    if root == "manifest" and len(loc) > 1 and loc[0] == "point":
        # Inside a manifest the point is named as in one read as written, whichever way it was read.
        root, loc = "point", loc[1:]
    if kind in ("json_invalid", "string_unicode") and not loc:
        return DocumentError(f"{root}: not UTF-8 JSON ({error['msg']})")
    if kind == "extra_forbidden":
        return DocumentError(f"{_where(root, loc[:-1])}: unknown field {loc[-1]!r}")
    if kind == "missing":
        return DocumentError(f"{_where(root, loc)}: missing")
    if loc[-1:] == ("[key]",):
        return DocumentError(f"{_where(root, loc[:-2])}: unknown key {loc[-2]!r}: {error['msg']}")
    return DocumentError(f"{_where(root, loc)}: {error['msg']}, found {_kind(error)}")


def _where(root: str, loc: tuple[int | str, ...]) -> str:
    return root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _kind(error: ErrorDetails) -> str:
    value = error["input"]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return "an array" if isinstance(value, list | tuple) else "an object"


# -- sealing ------------------------------------------------------------------------------------------------


def _body(point: RecoveryPoint) -> bytes:
    return json.dumps(point.to_doc(), sort_keys=True, separators=(",", ":")).encode()


def seal(point: RecoveryPoint, mac_key: bytes | None) -> bytes:
    """Serialize with a digest of the body: HMAC under the set's MAC key when encrypted, else SHA-256."""
    body = _body(point)
    digest = document_digest(body, mac_key)
    # The canonical body is embedded as it is: re-encoding a manifest of many thousand objects costs more than
    # the copy of an unchanged set.
    return b'{"digest":"' + digest.encode() + b'","point":' + body + b"}"


def _sealed_body(raw: bytes) -> tuple[bytes, bytes] | None:
    """The digest and the body bytes of a manifest exactly as ``seal`` wrote it, or None for any other layout.
    The digest stays bytes: a damaged one may hold any byte, and only bytes compare safely in constant time."""
    head, tail = b'{"digest":"', b"}"
    end = len(head) + 64
    if not (raw.startswith(head) and raw.endswith(tail) and raw[end : end + 10] == b'","point":'):
        return None
    return raw[len(head) : end], raw[end + 10 : -len(tail)]


def document_digest(body: bytes, mac_key: bytes | None) -> str:
    """The digest sealed documents carry: HMAC-SHA256 under the set's MAC key when encrypted, else SHA-256."""
    return hmac.new(mac_key, body, "sha256").hexdigest() if mac_key else hashlib.sha256(body).hexdigest()


def unseal(raw: bytes, name: str, mac_key: bytes | None) -> RecoveryPoint:
    """Parse and check a manifest; anything edited, truncated or malformed raises ``IntegrityError``."""

    def malformed(problem: str) -> IntegrityError:
        return IntegrityError(
            f"recovery point {name} is not a valid manifest ({problem}); restore it from a copy "
            "or remove it with `drctl backup prune`"
        )

    sealed = _sealed_body(raw)
    if sealed is not None and hmac.compare_digest(document_digest(sealed[1], mac_key).encode(), sealed[0]):
        # The bytes are the canonical body the digest was made over: checking them as they are spares
        # re-encoding a manifest of many thousand objects just to hash it again.
        try:
            return RecoveryPoint.from_json(sealed[1])
        except DocumentError as exc:
            raise malformed(str(exc)) from exc
    try:
        envelope = _Sealed._read(raw, "manifest")
    except DocumentError as exc:
        raise malformed(str(exc)) from exc
    if not hmac.compare_digest(document_digest(_body(envelope.point), mac_key).encode(), envelope.digest.encode()):
        raise IntegrityError(
            f"recovery point {name} fails its checksum: it was edited or corrupted after it was written; "
            "restore it from a copy, or remove it and take a new backup"
        )
    return envelope.point
