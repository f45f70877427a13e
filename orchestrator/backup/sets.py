"""Opening and creating backup sets: the settings document, the set's keys, and its recovery points."""

from __future__ import annotations

import io
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from orchestrator.backup import crypto
from orchestrator.backup.layout import CONFIG_KEY, DATA_PREFIX, POINTS_PREFIX, point_key
from orchestrator.backup.manifest import EncryptionSettings, RecoveryPoint, SetConfig, seal, unseal
from orchestrator.backup.pipeline import CompressingReader, DecompressingReader
from orchestrator.backup.recipients import check_recipients, sealer
from orchestrator.backup.sealed_stream import DecryptingReader, EncryptingReader, OpenKey, SealKey
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.providers.base import CreatableRoot, ObjectStore, Readable, object_url


@dataclass(frozen=True)
class NewSetOptions:
    """How a set is made on its first backup; later backups must agree or say nothing."""

    compression: bool = False
    encryption: bool = False
    recipients: tuple[str, ...] = ()
    """age recipients a new set's data is sealed to (with ``encryption``); checked by ``check_recipients``."""


@dataclass(frozen=True)
class BackupSet:
    store: ObjectStore
    config: SetConfig
    keys: crypto.SetKeys | None
    made_now: bool = False
    """This process made the set, so it holds little besides what this process wrote: listing it is cheap."""
    seal_key: SealKey | None = None
    """Seals each new blob's key to the set's age recipients; None for a set without recipients."""
    open_key: OpenKey | None = None
    """Opens a blob key sealed to recipients, with the reader's identities (loaded at the first such blob)."""

    @property
    def url(self) -> str:
        return self.store.url

    # -- recovery points ----------------------------------------------------------------------------------

    def point_ids(self) -> list[str]:
        """Ids of every recovery point, oldest first (ids start with their UTC time)."""
        return sorted(
            o.key[len(POINTS_PREFIX) : -len(".json")] for o in self.store.list(POINTS_PREFIX) if o.key.endswith(".json")
        )

    def load_point(self, point_id: str) -> RecoveryPoint:
        try:
            with self.store.open_read(point_key(point_id)) as reader:
                raw = reader.read()
        except NotFound as exc:
            known = self.point_ids()
            hint = f"known points: {', '.join(known[-5:])}" if known else "the set has no recovery points yet"
            raise NotFound(f"recovery point {point_id!r} is not in {self.url}; {hint}") from exc
        return unseal(raw, f"{point_id} in {self.url}", self.keys.mac_key if self.keys else None)

    def points(self) -> list[RecoveryPoint]:
        return [self.load_point(i) for i in self.point_ids()]

    def write_point(self, point: RecoveryPoint) -> None:
        raw = seal(point, self.keys.mac_key if self.keys else None)
        self.store.write(point_key(point.id), io.BytesIO(raw), metadata={"drctl_kind": "recovery-point"})

    def blob_sizes(self) -> dict[str, int]:
        """Stored size of every blob in the set, by blob id."""
        return {o.key.rsplit("/", 1)[1]: o.size for o in self.store.list(DATA_PREFIX)}

    # -- blob encoding --------------------------------------------------------------------------------------

    def encode(self, plain: Readable, blob: str) -> Readable:
        stream: Readable = plain
        if self.config.compression == "zstd":
            stream = CompressingReader(stream)
        if self.keys is not None:
            stream = EncryptingReader(stream, blob, key=self.keys.blob_key, seal_key=self.seal_key)
        return stream

    def decode(self, stored: Readable, blob: str, name: str) -> Readable:
        stream: Readable = stored
        if self.keys is not None:
            stream = DecryptingReader(stream, blob, name, key=self.keys.blob_key, open_key=self.open_key)
        if self.config.compression == "zstd":
            stream = DecompressingReader(stream, name)
        return stream

    @property
    def transforms_bytes(self) -> bool:
        return self.keys is not None or self.config.compression is not None

    @property
    def stores_hash(self) -> bool:
        """Blobs whose stored bytes nothing authenticates (compressed, not encrypted) get a recorded SHA-256."""
        return self.keys is None and self.config.compression is not None


def new_point_id(now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def _read_config(store: ObjectStore) -> SetConfig | None:
    try:
        with store.open_read(CONFIG_KEY) as reader:
            raw = reader.read()
    except NotFound:
        return None
    try:
        return SetConfig.from_json(raw)
    except ValueError as exc:
        raise InvalidInput(
            f"{object_url(store, CONFIG_KEY)} is not a valid backup set settings file ({exc}); restore it"
        ) from exc


def open_set(store: ObjectStore, key_source: crypto.KeySource, env: Mapping[str, str]) -> BackupSet:
    """Open an existing set; a location without one raises ``NotFound``."""
    store.ensure_root()
    config = _read_config(store)
    if config is None:
        raise NotFound(f"{store.url} is not a backup set (no {CONFIG_KEY}); check the location")
    return _with_keys(store, config, key_source, env)


def open_or_create_set(
    store: ObjectStore,
    key_source: crypto.KeySource,
    env: Mapping[str, str],
    options: NewSetOptions,
    now: datetime,
    create: bool = True,
) -> BackupSet | None:
    """Open the set at ``store``, or make it (unless ``create`` is false, as in a dry run: then None)."""
    try:
        store.ensure_root()
    except NotFound:
        # A directory that does not exist yet is an empty location: made on the first write, not before.
        if not isinstance(store, CreatableRoot):
            raise
        if not create:
            return None
        store.create_root()
    config = _read_config(store)
    if config is not None:
        if options.encryption and config.encryption is None:
            raise InvalidInput(f"{store.url} is an unencrypted set; encryption is chosen when a set is made")
        if options.compression and config.compression is None:
            raise InvalidInput(f"{store.url} is an uncompressed set; compression is chosen when a set is made")
        chosen = config.encryption.recipients if config.encryption else ()
        if options.recipients and set(options.recipients) != set(chosen):
            raise InvalidInput(
                f"{store.url} seals its data to {len(chosen)} other recipient(s); recipients are chosen when a set "
                "is made (copy without --recipient to use the set's own)"
            )
        return _with_keys(store, config, key_source, env)
    first = next(iter(store.list()), None)
    if first is not None:
        if first.key.startswith((DATA_PREFIX, POINTS_PREFIX)) or next(iter(store.list(DATA_PREFIX)), None):
            # drctl's own layout without its settings file: the store lost it (an emulator restart, a hand
            # delete). A new settings file would not match the data already there, so none is made.
            raise InvalidInput(
                f"{store.url} holds a backup set's data but its {CONFIG_KEY} is missing; restore {CONFIG_KEY} "
                "(from a replica or a version of it), or move the set's objects away and copy into an empty location"
            )
        raise InvalidInput(f"{store.url} holds objects but is not a backup set; choose an empty location")
    if not create:
        return None
    encryption = None
    if options.encryption:
        wrapper = key_source.wrapper(env)
        encryption = EncryptionSettings(
            key_wrapping=wrapper.scheme,
            wrapped_key=wrapper.wrap(crypto.new_data_key()),
            kek_id=wrapper.key_id,
            recipients=check_recipients(options.recipients),
        )
    config = SetConfig(created=now, compression="zstd" if options.compression else None, encryption=encryption)
    store.write(CONFIG_KEY, io.BytesIO(config.to_json()))
    return replace(_with_keys(store, config, key_source, env), made_now=True)


def _with_keys(
    store: ObjectStore, config: SetConfig, key_source: crypto.KeySource, env: Mapping[str, str]
) -> BackupSet:
    if config.encryption is None:
        return BackupSet(store, config, None)
    data_key = crypto.unwrap_key(key_source.wrapper(env), config.encryption.wrapped_key, config.encryption.kek_id)
    recipients = config.encryption.recipients
    return BackupSet(
        store,
        config,
        crypto.SetKeys.derive(data_key),
        seal_key=sealer(recipients) if recipients else None,
        open_key=key_source.opener(env, recipients),
    )
