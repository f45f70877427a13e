"""The set's documents (recovery points, settings, journal entries) are read strictly and written exactly as
the manifests already in users' sets were written.

The documents were first lax pydantic models, then read by hand-written code, and are now strict pydantic
models. The first (lax) schema is kept below as an oracle: every document the models accept, it accepted with
the same value (nothing is loosened), and every point serialises to the bytes it wrote (the digests of
existing manifests still hold). What the hand-written reader refused beyond the oracle is pinned by the named
refusals, and ``data/backup`` holds documents as that reader's drctl wrote them, byte for byte."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.backup.manifest import (
    DocumentError,
    EncryptionSettings,
    ObjectEntry,
    RecoveryPoint,
    SetConfig,
    Totals,
    moment_to_json,
    seal,
    unseal,
)
from orchestrator.errors import IntegrityError

WRITTEN_BEFORE = Path(__file__).parent / "data" / "backup"

# -- the previous (pydantic) schema, as an oracle ---------------------------------------------------------------


class _Old(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OldEncryption(_Old):
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    key_wrapping: Literal["local-aes-256-gcm"] = "local-aes-256-gcm"
    wrapped_key: str
    kek_id: str


class OldSetConfig(_Old):
    format: Literal[1] = 1
    created: datetime
    compression: Literal["zstd"] | None = None
    encryption: OldEncryption | None = None


class OldEntry(_Old):
    key: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    blob: str = Field(pattern=r"^[0-9a-f]{64}$")
    stored_size: int = Field(ge=0)
    source_etag: str | None = None
    source_version: str | None = None
    source_modified: datetime
    source_md5: str | None = None
    written_by: str


class OldTotals(_Old):
    objects: int
    bytes: int
    objects_transferred: int
    bytes_transferred: int
    objects_unchanged: int


class OldPoint(_Old):
    format: Literal[1] = 1
    id: str
    started: datetime
    created: datetime
    mode: Literal["full", "incremental", "differential"]
    parent: str | None
    source: str
    drctl_version: str
    compression: Literal["zstd"] | None
    encryption: Literal["AES-256-GCM"] | None
    objects: tuple[OldEntry, ...]
    totals: OldTotals
    paths: dict[Literal["streamed", "server-side", "unchanged"], int]


# -- generated documents ----------------------------------------------------------------------------------------

hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)
zones = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))])
moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.one_of(st.none(), zones)
)
texts = st.text(max_size=12)
counts = st.integers(min_value=0, max_value=2**53)

entries = st.builds(
    ObjectEntry,
    key=texts,
    size=counts,
    sha256=hex64,
    blob=hex64,
    stored_size=counts,
    source_modified=moments,
    written_by=texts,
    source_etag=st.none() | texts,
    source_version=st.none() | texts,
    source_md5=st.none() | texts,
)
points = st.builds(
    RecoveryPoint,
    id=texts,
    started=moments,
    created=moments,
    mode=st.sampled_from(["full", "incremental", "differential"]),
    parent=st.none() | texts,
    source=texts,
    drctl_version=texts,
    compression=st.sampled_from([None, "zstd"]),
    encryption=st.sampled_from([None, "AES-256-GCM"]),
    objects=st.lists(entries, max_size=4).map(tuple),
    totals=st.builds(
        Totals,
        objects=counts,
        bytes=counts,
        objects_transferred=counts,
        bytes_transferred=counts,
        objects_unchanged=counts,
    ),
    paths=st.dictionaries(st.sampled_from(["streamed", "server-side", "unchanged"]), counts),
)


def _old_body(doc: dict[str, object]) -> bytes:
    return json.dumps(
        OldPoint.model_validate(doc).model_dump(mode="json"), sort_keys=True, separators=(",", ":")
    ).encode()


@settings(max_examples=150, deadline=None)
@given(points)
def test_a_point_serialises_to_the_bytes_the_previous_schema_wrote_and_reads_back_equal(point: RecoveryPoint) -> None:
    raw = seal(point, None)
    body = raw[raw.index(b'"point":') + 8 : -1]
    assert body == _old_body(json.loads(body))
    assert unseal(raw, "p", None) == point
    # Re-formatted but unchanged: the digest is checked over the canonical body rebuilt from the document.
    mac = b"k" * 32
    assert unseal(json.dumps(json.loads(seal(point, mac)), indent=2).encode(), "p", mac) == point


def _valid_point_doc() -> dict[str, object]:
    when = datetime(2026, 11, 26, 14, 31, 5, 949013, tzinfo=UTC)
    entry = ObjectEntry(
        key="a",
        size=3,
        sha256="a" * 64,
        blob="b" * 64,
        stored_size=3,
        source_etag="e",
        source_modified=when,
        written_by="p0",
    )
    point = RecoveryPoint(
        id="p1",
        started=when,
        created=when,
        mode="incremental",
        parent="p0",
        source="s3://b/",
        drctl_version="0.1",
        compression=None,
        encryption=None,
        objects=(entry,),
        totals=Totals(objects=1, bytes=3, objects_transferred=1, bytes_transferred=3, objects_unchanged=0),
        paths={},
    )
    return point.to_doc()


TIMESTAMPS_FROMISOFORMAT_ALONE_TAKES = [
    "2026-11-26T14",
    "20261126T143105Z",
    "2026-11-26T143105",
    "2026-W48-4",
    "2026-11-26x14:31:05Z",
    "2026-11-26T14:31:05+01",
    "2026-11-26T14:31:05+01:00:30",
    "2026-11-26T14:31:05.Z",
    "20261126",
    "2026-11-26T14:31:05.1234567Z",
]

# Each mutation is applied at one path of a valid point: (path, new value) or (path, None) to delete.
_MISSING = object()
Mutation = tuple[tuple[str | int, ...], object]

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-3, max_value=3),
    st.sampled_from(["", "3", "zstd", "AES-256-GCM", "full", "2026-11-26T14:31:05Z", "a" * 64, "A" * 64, "a" * 63]),
    st.sampled_from(["2026-11-26", "2026-11-26 14:31:05+01:00", "a" * 64 + "\n", "1700000000", "streamed"]),
    # Forms datetime.fromisoformat takes and the old schema did not (or read as something else).
    st.sampled_from(TIMESTAMPS_FROMISOFORMAT_ALONE_TAKES),
    st.sampled_from(["2026-11-26T14:31:05.1Z", "2026-11-26T14:31:05+01:00", "2026-11-26T14:31:05"]),
    st.just("lone \ud800 surrogate"),
    st.builds(list),
    st.builds(dict),
    st.just(_MISSING),
)
_paths = st.sampled_from(
    [
        ("format",),
        ("id",),
        ("started",),
        ("mode",),
        ("parent",),
        ("compression",),
        ("encryption",),
        ("objects",),
        ("totals",),
        ("totals", "bytes"),
        ("paths",),
        ("paths", "streamed"),
        ("paths", "copied"),
        ("unknown",),
        ("objects", 0),
        ("objects", 0, "key"),
        ("objects", 0, "size"),
        ("objects", 0, "sha256"),
        ("objects", 0, "blob"),
        ("objects", 0, "stored_size"),
        ("objects", 0, "source_etag"),
        ("objects", 0, "source_modified"),
        ("objects", 0, "source_md5"),
        ("objects", 0, "written_by"),
        ("objects", 0, "extra"),
    ]
)


def _mutate(doc: dict[str, object], path: tuple[str | int, ...], value: object) -> None:
    parent: object = doc
    for step in path[:-1]:
        parent = parent[step]  # type: ignore[index]
    if not isinstance(parent, (dict, list)):
        raise TypeError("an earlier mutation replaced this path's container")
    if value is _MISSING:
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent.clear()
    else:
        parent[path[-1]] = value  # type: ignore[index]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(_paths, _values), min_size=1, max_size=3))
def test_nothing_the_previous_schema_refused_is_accepted_now(mutations: list[Mutation]) -> None:
    doc = _valid_point_doc()
    for path, value in mutations:
        try:
            _mutate(doc, path, value)
        except (KeyError, IndexError, TypeError):
            return  # the path no longer exists after an earlier mutation
    raw = json.dumps(doc).encode()
    try:
        new = RecoveryPoint.from_json(raw)
    except DocumentError:
        return
    old = OldPoint.model_validate_json(raw)  # raises if the new reader accepted what the old one refused
    assert json.loads(json.dumps(new.to_doc())) == old.model_dump(mode="json")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("objects", 0, "size"), "3", "point.objects[0].size"),
        (("objects", 0, "size"), 3.0, "point.objects[0].size"),
        (("objects", 0, "size"), True, "point.objects[0].size"),
        (("objects", 0, "size"), -1, "point.objects[0].size"),
        (("objects", 0, "stored_size"), -1, "point.objects[0].stored_size"),
        (("objects", 0, "sha256"), "a" * 64 + "\n", "point.objects[0].sha256"),
        (("objects", 0, "sha256"), "A" * 64, "point.objects[0].sha256"),
        (("objects", 0, "blob"), "b" * 63, "point.objects[0].blob"),
        (("objects", 0, "key"), 3, "point.objects[0].key"),
        (("objects", 0, "source_etag"), 3, "point.objects[0].source_etag"),
        (("objects", 0, "source_modified"), 1_700_000_000, "point.objects[0].source_modified"),
        (("objects", 0, "source_modified"), "1700000000", "point.objects[0].source_modified"),
        (("objects", 0, "source_modified"), "2026-11-26", "point.objects[0].source_modified"),
        (("objects", 0, "source_modified"), "2026-13-26T14:31:05Z", "point.objects[0].source_modified"),
        (("objects", 0, "written_by"), _MISSING, "point.objects[0].written_by"),
        (("objects", 0, "colour"), "red", "'colour'"),
        (("objects", 0), [], "point.objects[0]"),
        (("objects",), {}, "point.objects"),
        (("totals", "objects"), None, "point.totals.objects"),
        (("totals", "bytes"), 1.0, "point.totals.bytes"),
        (("totals", "objects_unchanged"), False, "point.totals.objects_unchanged"),
        (("totals", "depth"), 1, "'depth'"),
        (("paths", "copied"), 1, "point.paths"),
        (("paths", "streamed"), True, "point.paths.streamed"),
        (("paths", "streamed"), "1", "point.paths.streamed"),
        (("parent",), _MISSING, "point.parent"),
        (("compression",), _MISSING, "point.compression"),
        (("compression",), "gzip", "point.compression"),
        (("encryption",), _MISSING, "point.encryption"),
        (("encryption",), "aes-256-gcm", "point.encryption"),
        (("mode",), "Full", "point.mode"),
        (("format",), 2, "point.format"),
        # The oracle took these (a Literal of an int takes true and 1.0 even in strict mode); drctl never did.
        (("format",), True, "point.format"),
        (("format",), 1.0, "point.format"),
        (("format",), "1", "point.format"),
        (("started",), None, "point.started"),
        (("unknown",), 1, "'unknown'"),
    ],
)
def test_a_field_not_as_drctl_writes_it_is_refused_by_name(
    path: tuple[str | int, ...], value: object, field: str
) -> None:
    doc = _valid_point_doc()
    RecoveryPoint.from_json(json.dumps(doc))  # the document is valid before the one change
    _mutate(doc, path, value)
    with pytest.raises(DocumentError, match=field.replace("[", r"\[").replace("]", r"\]")):
        RecoveryPoint.from_json(json.dumps(doc))


def test_a_malformed_manifest_is_an_integrity_error_not_a_traceback() -> None:
    point = RecoveryPoint.from_json(json.dumps(_valid_point_doc()))
    raw = seal(point, None)
    doc = json.loads(raw)
    doc["point"]["objects"][0]["size"] = "3"
    with pytest.raises(IntegrityError, match=r"not a valid manifest \(point\.objects\[0\]\.size: "):
        unseal(json.dumps(doc).encode(), "p1", None)
    del doc["digest"]
    with pytest.raises(IntegrityError, match=r"not a valid manifest \(manifest\.digest: missing"):
        unseal(json.dumps(doc).encode(), "p1", None)
    with pytest.raises(IntegrityError, match=r"not a valid manifest \(manifest: unknown field 'signature'"):
        unseal(json.dumps({**json.loads(raw), "signature": "x"}).encode(), "p1", None)
    with pytest.raises(IntegrityError, match=r"not a valid manifest \(manifest\.point: "):
        unseal(b'{"digest":"' + b"0" * 64 + b'","point":[]}', "p1", None)
    # As written, with a digest that matches the body: the body is still read strictly.
    body = b'{"format":1}'
    sealed = b'{"digest":"' + hashlib.sha256(body).hexdigest().encode() + b'","point":' + body + b"}"
    with pytest.raises(IntegrityError, match=r"not a valid manifest \(point\.id: missing"):
        unseal(sealed, "p1", None)


def test_settings_round_trip_and_read_like_the_previous_schema() -> None:
    when = datetime(2026, 11, 26, 14, 31, 5, tzinfo=UTC)
    plain = SetConfig(created=when)
    sealed = SetConfig(created=when, compression="zstd", encryption=EncryptionSettings(wrapped_key="w", kek_id="k"))
    for config in (plain, sealed):
        raw = config.to_json()
        assert SetConfig.from_json(raw) == config
    raw = plain.to_json()
    assert json.loads(raw) == OldSetConfig.model_validate_json(raw).model_dump(mode="json")
    # A new encrypted set names its recipients (even none), so a drctl from before per-blob subkeys, which
    # could not read its blobs, refuses the set at once instead of failing blob by blob.
    with pytest.raises(ValidationError, match="recipients"):
        OldSetConfig.model_validate_json(sealed.to_json())
    old_sealed = b'{"format":1,"created":"2026-11-26T14:31:05Z","compression":"zstd","encryption":'
    old_sealed += b'{"algorithm":"AES-256-GCM","key_wrapping":"local-aes-256-gcm","wrapped_key":"w","kek_id":"k"}}'
    assert SetConfig.from_json(old_sealed) == sealed, "a set made before recipients still opens"
    # Defaults may be left out, as pydantic allowed; unknown or wrong ones may not.
    assert SetConfig.from_json(b'{"created":"2026-11-26T14:31:05Z"}') == plain
    for bad, field in (
        (b'{"created":"2026-11-26T14:31:05Z","compression":"gzip"}', "settings.compression"),
        (b'{"created":"2026-11-26T14:31:05Z","encryption":{"wrapped_key":"w"}}', "settings.encryption.kek_id"),
        (
            b'{"created":"2026-11-26T14:31:05Z","encryption":{"wrapped_key":"w","kek_id":"k","algorithm":null}}',
            "settings.encryption.algorithm",
        ),
        (
            b'{"created":"2026-11-26T14:31:05Z","encryption":{"wrapped_key":"w","kek_id":"k","key_wrapping":"kms"}}',
            "settings.encryption.key_wrapping",
        ),
        (b'{"created":"2026-11-26T14:31:05Z","owner":"me"}', "settings: unknown field 'owner'"),
        (b'{"created":"2026-11-26T14:31:05Z","format":true}', "settings.format"),
        (b'{"created":"yesterday"}', "settings.created"),
        (b"{}", "settings.created: missing"),
        (b"[]", "settings: "),
        (b"\xff", "settings: not UTF-8 JSON"),
    ):
        with pytest.raises(DocumentError, match=field.replace(".", r"\.")):
            SetConfig.from_json(bad)


@settings(max_examples=100, deadline=None)
@given(entries)
def test_a_journal_entry_round_trips(entry: ObjectEntry) -> None:
    assert ObjectEntry.from_json(entry.to_json()) == entry
    assert ObjectEntry.from_json(entry.to_json().encode()) == entry


def test_a_journal_entry_names_its_field() -> None:
    entry = json.loads((WRITTEN_BEFORE / "journal-entry.json").read_text())
    with pytest.raises(DocumentError, match=r"entry\.key: "):
        ObjectEntry.from_json(json.dumps({**entry, "key": None}))
    with pytest.raises(DocumentError, match=r"entry: unknown field 'colour'"):
        ObjectEntry.from_json(json.dumps({**entry, "colour": "red"}))


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2026-01-02T03:04:05.000006Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
        (
            datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone(timedelta(hours=1))),
            "2026-01-02T03:04:05.120000+01:00",
        ),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05"),
        (datetime(2026, 1, 2, 3, 4, 5, 500), "2026-01-02T03:04:05.000500"),
        # pydantic's own dump would write +00:00 here, losing the seconds of the offset.
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(seconds=30))), "2026-01-02T03:04:05+00:00:30"),
    ],
)
def test_moments_are_written_as_before(moment: datetime, text: str) -> None:
    assert moment_to_json(moment) == text
    entry = ObjectEntry(
        key="k", size=1, sha256="a" * 64, blob="b" * 64, stored_size=1, source_modified=moment, written_by="p"
    )
    assert json.loads(entry.to_json())["source_modified"] == text


@pytest.mark.parametrize(
    "name", ["point-sha256.json", "point-hmac.json", "drctl-set.json", "drctl-set-plain.json", "journal-entry.json"]
)
def test_documents_written_before_read_back_and_rewrite_to_the_same_bytes(name: str) -> None:
    raw = (WRITTEN_BEFORE / name).read_bytes()
    if name.startswith("point-"):
        mac = b"k" * 32 if name == "point-hmac.json" else None
        point = unseal(raw, name, mac)  # the digest written then still holds
        assert seal(point, mac) == raw
        # Re-encoded by another tool: the digest is checked over the canonical body rebuilt from the models.
        assert unseal(json.dumps(json.loads(raw), indent=2, ensure_ascii=False).encode(), name, mac) == point
    elif name == "drctl-set.json":
        # An encrypted set's settings gain only the (empty) recipients when written again.
        expected = json.loads(raw)
        expected["encryption"]["recipients"] = []
        assert json.loads(SetConfig.from_json(raw).to_json()) == expected
    elif name.startswith("drctl-set"):
        assert SetConfig.from_json(raw).to_json() == raw
    else:
        assert ObjectEntry.from_json(raw).to_json() == raw.decode()


def test_documents_are_frozen_and_compared_by_value() -> None:
    point = RecoveryPoint.from_json(json.dumps(_valid_point_doc()))
    entry = point.objects[0]
    again = ObjectEntry.from_json(entry.to_json())
    assert again == entry
    assert hash(again) == hash(entry)
    assert again is not entry
    assert entry.model_copy(update={"written_by": "p9"}) != entry
    with pytest.raises(ValidationError, match="frozen"):
        entry.written_by = "p9"
    # Defaults left out or written out are the same settings.
    assert SetConfig.from_json(b'{"created":"2026-11-26T14:31:05Z"}') == SetConfig.from_json(
        b'{"format":1,"created":"2026-11-26T14:31:05Z","compression":null,"encryption":null}'
    )


@pytest.mark.parametrize("moment", TIMESTAMPS_FROMISOFORMAT_ALONE_TAKES)
def test_only_the_timestamp_form_drctl_writes_is_read(moment: str) -> None:
    raw = json.dumps({"created": moment}).encode()
    with pytest.raises(DocumentError, match=r"settings\.created"):
        SetConfig.from_json(raw)
    entry = json.loads((WRITTEN_BEFORE / "journal-entry.json").read_text())
    with pytest.raises(DocumentError, match=r"entry\.source_modified"):
        ObjectEntry.from_json(json.dumps({**entry, "source_modified": moment}))


@pytest.mark.parametrize(
    "moment",
    ["2026-11-26T14:31:05Z", "2026-11-26T14:31:05.1Z", "2026-11-26T14:31:05.123456-05:30", "2026-11-26T14:31:05"],
)
def test_the_timestamp_forms_drctl_writes_are_read(moment: str) -> None:
    assert SetConfig.from_json(json.dumps({"created": moment}).encode()).created == datetime.fromisoformat(moment)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_documents_are_utf8_only_as_they_were(encoding: str) -> None:
    settings_doc = SetConfig(created=datetime(2026, 11, 26, tzinfo=UTC)).to_json().decode()
    point = RecoveryPoint.from_json(json.dumps(_valid_point_doc()))
    entry = point.objects[0].to_json()
    for reader, old, text in (
        (SetConfig.from_json, OldSetConfig.model_validate_json, settings_doc),
        (ObjectEntry.from_json, OldEntry.model_validate_json, entry),
    ):
        raw = text.encode(encoding)
        with pytest.raises(ValidationError):
            old(raw)
        reader(text.encode())  # the same document in UTF-8 is read
        with pytest.raises(DocumentError, match="not UTF-8 JSON"):
            reader(raw)
    with pytest.raises(IntegrityError, match="not a valid manifest"):
        unseal(seal(point, None).decode().encode(encoding), "p1", None)


def test_a_lone_surrogate_is_refused_as_it_was() -> None:
    raw = ObjectEntry(
        key="k\ud800",
        size=1,
        sha256="a" * 64,
        blob="b" * 64,
        stored_size=1,
        source_modified=datetime(2026, 1, 1),
        written_by="p",
    ).to_json()
    assert "\\ud800" in raw  # escaped in the JSON text, so only the reader can catch it
    with pytest.raises(ValidationError):
        OldEntry.model_validate_json(raw)
    with pytest.raises(DocumentError, match="entry: not UTF-8 JSON"):
        ObjectEntry.from_json(raw)
    # Unescaped, in a str (the journal hands the reader text): not UTF-8 either.
    with pytest.raises(DocumentError, match="entry: not UTF-8 JSON"):
        ObjectEntry.from_json(raw.replace("\\ud800", "\ud800"))
    with pytest.raises(DocumentError, match="entry: not UTF-8 JSON"):
        ObjectEntry.from_json(raw.replace("\\ud800", "\ud800").encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"created":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"created":"2026-11-26T14:31:05Z","encryption":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}",
    ],
    ids=["top", "in-a-field", "in-a-nested-document"],
)
def test_nesting_too_deep_for_the_parser_is_a_document_error(raw: bytes) -> None:
    with pytest.raises(DocumentError, match=r"settings: not UTF-8 JSON \(.*recursion"):
        SetConfig.from_json(raw)
    with pytest.raises(IntegrityError, match="not a valid manifest"):
        unseal(raw, "p1", None)


@pytest.mark.parametrize("position", [11, 40, 74])
@pytest.mark.parametrize("flip", [0x80, 0xC3])
@pytest.mark.parametrize("mac", [None, b"k" * 32])
def test_a_digest_damaged_into_any_byte_is_refused_as_corrupt_not_a_crash(
    position: int, flip: int, mac: bytes | None
) -> None:
    """A flipped high bit turns a digest character into a non-ASCII byte; it must fail the check like any
    other damage (it once reached hmac.compare_digest as text and raised TypeError)."""
    raw = bytearray(seal(RecoveryPoint.from_json(json.dumps(_valid_point_doc())), mac))
    raw[position] ^= flip
    with pytest.raises(IntegrityError, match="p1"):
        unseal(bytes(raw), "p1", mac)
