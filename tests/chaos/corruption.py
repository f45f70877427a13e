"""The corruption fault class: backup sets of every kind, damaged one byte, one cut or one deletion at a time,
and what ``drctl backup verify --deep`` and ``drctl backup restore`` must make of it.

A *case* is one damaged object: a data blob, a recovery point's manifest, or the set's key material (the wrapped
data key and the key's fingerprint in ``drctl-set.json``). Damage is a single-byte flip (XOR with a random
non-zero byte) at a random offset in a region (the first 32 bytes, the middle half, the last byte), a truncation
to a random shorter length, or a deletion. Offsets are chosen from sizes only, never from a format's layout.

Cases are played in *rounds* against one set: damage, one ``verify --deep``, one ``restore``, then the damaged
objects are put back exactly as they were. A round of blob damage holds several cases at once (different
objects of one recovery point), because ``verify --deep`` reports every missing and corrupt object it finds and
restore must leave every one of them out: one verify must name all of them and no other object, and no damaged
object may appear in the target. Flips and size-changing damage get rounds of their own, because restore checks
sizes before it writes anything: a mixed round would never take a flipped blob through the verification that
happens as an object is written. A damaged manifest or key fails the whole command, so those rounds hold one case.

A replay (``DRCTL_CHAOS_SEED``) makes the same sources and key and damages the same objects at the same offsets
with the same bytes; what it cannot repeat is drctl's own randomness (data keys, nonces, point ids and times).

Sets are made in-process (as ``tests.support.backup.copy_in_process`` does): setting up is not under test.
Everything under test runs as a user runs it, through the ``drctl`` process.
"""

from __future__ import annotations

import base64
import io
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Literal, Protocol

from orchestrator.backup.copy import CopyOptions, execute_copy, plan_copy
from orchestrator.backup.crypto import KeySource
from orchestrator.backup.journal import CopyJournal
from orchestrator.backup.layout import CONFIG_KEY, blob_key, point_key
from orchestrator.backup.manifest import Mode
from orchestrator.backup.sets import NewSetOptions, open_or_create_set
from orchestrator.errors import ExitCode
from orchestrator.providers.base import ObjectStore
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import read_store, read_tree
from tests.support.cli import drctl

MiB = 1024 * 1024
KEY_ENV = "CHAOS_SET_KEY"


def chaos_seed() -> int:
    """The run's seed: ``DRCTL_CHAOS_SEED`` replays a run; otherwise a fresh one, printed with every failure."""
    given = os.environ.get("DRCTL_CHAOS_SEED")
    return int(given) if given else secrets.randbelow(2**32)


SEED = chaos_seed()

# -- what is damaged, and how -----------------------------------------------------------------------------------

Target = Literal["blob", "manifest", "key"]
Damage = Literal["flip", "truncate", "delete"]
Where = Literal["header", "middle", "last", "kek_id"]
"""Where a flip lands: a region of the object (of the wrapped data key, for key material), or the key's id."""


@dataclass(frozen=True)
class Kind:
    name: str
    compress: bool
    encrypt: bool

    @property
    def transforms(self) -> bool:
        """Its blobs are not the objects' bytes: even an empty object's blob has bytes to damage."""
        return self.compress or self.encrypt


PLAIN = Kind("plain", compress=False, encrypt=False)
COMPRESSED = Kind("compressed", compress=True, encrypt=False)
ENCRYPTED = Kind("encrypted", compress=False, encrypt=True)
BOTH = Kind("compressed+encrypted", compress=True, encrypt=True)
KINDS = (PLAIN, COMPRESSED, ENCRYPTED, BOTH)


@dataclass(frozen=True)
class Harm:
    damage: Damage
    where: Where | None = None


@dataclass(frozen=True)
class Round:
    kind: Kind
    target: Target
    harms: tuple[Harm, ...]
    include_largest: bool = False
    """Blob rounds: damage the point's largest object too (on the lab, the one restored in several parts)."""


def blob_flips(kind: Kind, *where: Where, include_largest: bool = False) -> Round:
    return Round(kind, "blob", tuple(Harm("flip", w) for w in where), include_largest)


def blob_cuts(kind: Kind, truncations: int, deletions: int) -> Round:
    return Round(kind, "blob", (Harm("truncate"),) * truncations + (Harm("delete"),) * deletions)


def manifest(kind: Kind, damage: Damage, where: Where | None = None) -> Round:
    return Round(kind, "manifest", (Harm(damage, where),))


def key_material(kind: Kind, damage: Damage, where: Where | None = None) -> Round:
    assert kind.encrypt, "only an encrypted set stores key material"
    return Round(kind, "key", (Harm(damage, where),))


def flip_offset(rng: Random, size: int, where: Where) -> int:
    if where == "header":
        return rng.randrange(min(32, size))
    if where == "middle":
        low = size // 4
        return rng.randrange(low, max(low + 1, 3 * size // 4))
    return size - 1


@dataclass
class Case:
    """One damaged object and what the two commands made of it."""

    place: str
    kind: Kind
    target: Target
    damage: Damage
    name: str
    """The source object's key (blobs), the point's id (manifests), or the settings file (key material)."""
    stored_key: str
    how: str
    verify_problems: list[str] = field(default_factory=list)
    restore_problems: list[str] = field(default_factory=list)
    wrote_affected: bool = False
    """Restore wrote the damaged object (or, for a manifest or key, anything at all)."""

    @property
    def found(self) -> bool:
        return not self.verify_problems

    @property
    def refused(self) -> bool:
        return not self.restore_problems

    @property
    def survived(self) -> bool:
        return self.found and self.refused

    def describe(self) -> str:
        problems = "; ".join(self.verify_problems + self.restore_problems)
        return (
            f"{self.place}, {self.kind.name} set: {self.damage} of {self.target} {self.name!r} ({self.stored_key}) "
            f"{self.how} [seed {SEED}]: {problems}"
        )


# -- sets and the bytes under them ------------------------------------------------------------------------------


class RawAccess(Protocol):
    """The bytes of a set's objects, below drctl: how damage gets in and is put right again."""

    def read(self, key: str) -> bytes: ...

    def put(self, key: str, data: bytes) -> None: ...

    def delete(self, key: str) -> None: ...


@dataclass(frozen=True)
class LocalRaw:
    """A set in a directory: damage is done to the files in place, as a disk would, and nothing else changes."""

    root: Path

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def put(self, key: str, data: bytes) -> None:
        (self.root / key).write_bytes(data)

    def delete(self, key: str) -> None:
        (self.root / key).unlink()


@dataclass
class StoreRaw:
    """A set in a bucket or container: damaged objects are overwritten with their metadata kept."""

    store: ObjectStore
    _metadata: dict[str, dict[str, str]] = field(default_factory=dict)

    def read(self, key: str) -> bytes:
        self._metadata.setdefault(key, dict(self.store.stat(key).metadata))
        with self.store.open_read(key) as reader:
            return reader.read()

    def put(self, key: str, data: bytes) -> None:
        self.store.write(key, io.BytesIO(data), metadata=self._metadata.get(key, {}))

    def delete(self, key: str) -> None:
        self.store.delete(key)


class RestoreTarget(Protocol):
    @property
    def url(self) -> str:
        """Where drctl restores to, as given on its command line."""
        ...

    def contents(self) -> dict[str, bytes]:
        """Every object or file in the target (hidden files too), by key."""
        ...

    def leftovers(self) -> list[str]:
        """Anything else a refused restore left behind (unfinished uploads)."""
        ...


@dataclass(frozen=True)
class LocalTarget:
    path: Path

    @property
    def url(self) -> str:
        return str(self.path)

    def contents(self) -> dict[str, bytes]:
        return read_tree(self.path) if self.path.exists() else {}

    def leftovers(self) -> list[str]:
        return []


@dataclass(frozen=True)
class StoreTarget:
    url: str
    factory: StoreFactory
    bucket: str | None = None
    """For S3: the bucket, whose unfinished multipart uploads under the target count as leftovers."""

    def contents(self) -> dict[str, bytes]:
        return read_store(self.factory.open(self.url))

    def leftovers(self) -> list[str]:
        if self.bucket is None:
            return []
        prefix = self.url.removeprefix(f"s3://{self.bucket}/")
        uploads = self.factory.s3_client().list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return [f"unfinished multipart upload of {u['Key']}" for u in uploads.get("Uploads", [])]


@dataclass
class Place:
    """Where sets live and restores go: a local directory, an S3 bucket or an Azure container."""

    name: str
    factory: StoreFactory
    env: dict[str, str]
    set_url: Callable[[str], str]
    raw: Callable[[str], RawAccess]
    target: Callable[[int], RestoreTarget]
    large: bool = False
    """Give each set an object larger than a part, so a restore of it writes in parts."""


@dataclass
class BuiltSet:
    kind: Kind
    url: str
    raw: RawAccess
    env: dict[str, str]
    key_args: tuple[str, ...]
    points: list[str]
    states: dict[str, dict[str, bytes]]
    """Each point's source state: what a restore of it must give."""
    blobs: dict[str, dict[str, str]]
    """Each point's objects: key to blob key in the set."""

    def referencing(self, stored: str) -> list[str]:
        return [p for p in self.points if stored in self.blobs[p].values()]


def source_states(rng: Random, large: bool) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The source at the full point and at the incremental one: text and random data, small and large,
    an empty object and a non-ASCII key."""
    words = [b"alpha", b"beta", b"gamma", b"delta", b"order", b"shipped", b"paid", b"eu-west-1"]

    def text(lines: int) -> bytes:
        return b"".join(b" ".join(rng.choice(words) for _ in range(8)) + b"\n" for _ in range(lines))

    first = {
        "db/dump.sql": b"".join(
            f"INSERT INTO orders VALUES ({i}, {rng.randrange(10**6)});\n".encode() for i in range(800)
        ),
        "db/wal/000001": rng.randbytes(rng.randrange(2_000, 40_000)),
        "db/wal/000002": rng.randbytes(rng.randrange(2_000, 40_000)),
        "db/wal/000003": rng.randbytes(rng.randrange(2_000, 40_000)),
        "etc/app.yaml": b"replicas: 3\nregion: eu-west-1\n",
        "logs/app.log": text(200),
        "media/a.bin": rng.randbytes(60_000),
        "media/b.bin": rng.randbytes(61_000),
        "segments/over-one-mib.bin": rng.randbytes(MiB + 4097),
        "ünïcödé/日本.txt": "データ\n".encode() * 50,
        "empty.dat": b"",
        "tiny.txt": b"x",
    }
    if large:
        first["big/over-a-part.bin"] = rng.randbytes(9 * MiB)
    second = dict(first)
    second["db/wal/000002"] = rng.randbytes(len(first["db/wal/000002"]))
    second["logs/app.log"] = first["logs/app.log"] + text(50)
    second["db/wal/000004"] = rng.randbytes(rng.randrange(2_000, 40_000))
    second["reports/q4.csv"] = b"region,total\n" + text(30).replace(b" ", b",")
    del second["media/b.bin"]
    return first, second


def _write_source(root: Path, state: Mapping[str, bytes]) -> None:
    for old in [p for p in root.rglob("*") if p.is_file()]:
        if old.relative_to(root).as_posix() not in state:
            old.unlink()
    for key, data in state.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)


def build_sets(place: Place, kinds: Sequence[Kind], source: Path, state_dir: Path, rng: Random) -> dict[str, BuiltSet]:
    """One set per kind, each with a full point and an incremental one of the same source."""
    states = source_states(rng, place.large)
    key = base64.b64encode(rng.randbytes(32)).decode()  # from the seed too, so a replay damages the same key id
    env = {**place.env, KEY_ENV: key}
    source.mkdir(parents=True, exist_ok=True)
    source_store = place.factory.open(str(source))
    points: dict[str, list[str]] = {k.name: [] for k in kinds}
    point_states: dict[str, dict[str, dict[str, bytes]]] = {k.name: {} for k in kinds}
    modes: tuple[Mode, Mode] = ("full", "incremental")
    for mode, state in zip(modes, states, strict=True):
        _write_source(source, state)
        for kind in kinds:
            bset = open_or_create_set(
                place.factory.open(place.set_url(kind.name)),
                KeySource(key_env=KEY_ENV if kind.encrypt else None),
                env,
                NewSetOptions(compression=kind.compress, encryption=kind.encrypt),
                datetime.now(UTC),
            )
            assert bset is not None
            options = CopyOptions(mode=mode)
            journal = CopyJournal(state_dir / "journal.sqlite")
            try:
                result = execute_copy(plan_copy(source_store, bset, options), source_store, bset, options, journal)
            finally:
                journal.close()
            points[kind.name].append(result.recovery_point)
            point_states[kind.name][result.recovery_point] = dict(state)
    built: dict[str, BuiltSet] = {}
    for kind in kinds:
        url = place.set_url(kind.name)
        bset = open_or_create_set(
            place.factory.open(url),
            KeySource(key_env=KEY_ENV if kind.encrypt else None),
            env,
            NewSetOptions(),
            datetime.now(UTC),
        )
        assert bset is not None
        blobs = {p: {e.key: blob_key(e.blob) for e in bset.load_point(p).objects} for p in points[kind.name]}
        for p in points[kind.name]:
            assert set(blobs[p]) == set(point_states[kind.name][p]), f"{kind.name}: point {p} is not its source"
        built[kind.name] = BuiltSet(
            kind,
            url,
            place.raw(kind.name),
            env,
            ("--key-env", KEY_ENV) if kind.encrypt else (),
            points[kind.name],
            point_states[kind.name],
            blobs,
        )
    return built


# -- playing rounds ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the figures line says beyond survived/cases."""

    unaffected_intact: int = 0
    unaffected_not_written: int = 0
    refused_before_writing: int = 0
    manifest_deletions: int = 0
    noticed_by_whole_set_verify: int = 0


def _code_name(code: int) -> str:
    try:
        return f"{code} ({ExitCode(code).name})"
    except ValueError:
        return str(code)


def _run_problems(result: subprocess.CompletedProcess[str], codes: Sequence[ExitCode], what: str) -> list[str]:
    """The failure contract: one of ``codes``, one line on stderr, never a traceback."""
    problems: list[str] = []
    if result.returncode not in codes:
        wanted = " or ".join(_code_name(c) for c in codes)
        problems.append(f"{what} exited {_code_name(result.returncode)}, expected {wanted}")
    if "Traceback" in result.stderr:
        problems.append(f"{what} printed a traceback: {result.stderr[-600:]!r}")
    elif len(result.stderr.strip().splitlines()) != 1:
        problems.append(f"{what} did not fail in one line: stderr {result.stderr[-600:]!r}")
    return problems


def _flip(data: bytes, offset: int, mask: int) -> bytes:
    damaged = bytearray(data)
    damaged[offset] ^= mask
    return bytes(damaged)


def _key_span(settings: bytes, where: Where) -> tuple[int, int]:
    """The bytes of the key material in the set's settings: the wrapped data key, or the key's id."""
    name = b"kek_id" if where == "kek_id" else b"wrapped_key"
    match = re.search(rb'"' + name + rb'"\s*:\s*"([^"]+)"', settings)
    assert match, f"{CONFIG_KEY} no longer holds {name.decode()}: update the key-material targets of this test"
    return match.span(1)


class Player:
    """Plays rounds against the sets of one place and collects every case."""

    def __init__(self, place: Place, sets: Mapping[str, BuiltSet], rng: Random) -> None:
        self.place = place
        self.sets = sets
        self.rng = rng
        self.cases: list[Case] = []
        self.tally = Tally()
        self._targets = 0

    def _new_target(self) -> RestoreTarget:
        self._targets += 1
        return self.place.target(self._targets)

    def play(self, rnd: Round) -> list[Case]:
        bset = self.sets[rnd.kind.name]
        if rnd.target == "blob":
            cases = self._blob_round(bset, rnd)
        elif rnd.target == "manifest":
            cases = [self._manifest_round(bset, rnd.harms[0])]
        else:
            cases = [self._key_round(bset, rnd.harms[0])]
        self.cases += cases
        return cases

    def _damage(
        self, raw: RawAccess, stored: str, harm: Harm, span: tuple[int, int] | None = None
    ) -> tuple[bytes, str]:
        """Damage one object; returns its original bytes and how it was damaged."""
        original = raw.read(stored)
        size = len(original)
        if harm.damage == "delete":
            raw.delete(stored)
            return original, f"deleted ({size} bytes)"
        if harm.damage == "truncate":
            length = self.rng.randrange(size)
            raw.put(stored, original[:length])
            return original, f"truncated to {length} of {size} bytes"
        assert harm.where is not None
        start, end = span if span is not None else (0, size)
        # The key's id is short: a flip may land on any of its characters.
        width = end - start
        offset = start + (
            self.rng.randrange(width) if harm.where == "kek_id" else flip_offset(self.rng, width, harm.where)
        )
        mask = self.rng.randrange(1, 256)
        raw.put(stored, _flip(original, offset, mask))
        region = f"{harm.where} of the value at bytes {start}-{end}" if span is not None else harm.where
        return original, f"byte {offset} of {size} ({region}) XOR {mask:#04x}"

    # -- data blobs -------------------------------------------------------------------------------------------

    def _blob_round(self, bset: BuiltSet, rnd: Round) -> list[Case]:
        point = self.rng.choice(bset.points)
        blobs = bset.blobs[point]
        state = bset.states[point]
        chosen: list[str] = []
        if rnd.include_largest:
            chosen.append(max(sorted(state), key=lambda k: len(state[k])))
        for harm in rnd.harms[len(chosen) :]:
            # A flip or a cut needs a byte to act on: an empty plain object is stored as an empty blob.
            eligible = sorted(
                k for k in state if k not in chosen and (harm.damage == "delete" or state[k] or bset.kind.transforms)
            )
            chosen.append(self.rng.choice(eligible))
        originals: dict[str, bytes] = {}
        cases: list[Case] = []
        try:
            for key, harm in zip(chosen, rnd.harms, strict=True):
                stored = blobs[key]
                originals[stored], how = self._damage(bset.raw, stored, harm)
                cases.append(Case(self.place.name, bset.kind, "blob", harm.damage, key, stored, how + f" in {point}"))
            self._check_blob_verify(bset, cases)
            self._check_blob_restore(bset, point, cases)
        finally:
            for stored, data in originals.items():
                bset.raw.put(stored, data)
        return cases

    def _check_blob_verify(self, bset: BuiltSet, cases: list[Case]) -> None:
        result = drctl("backup", "verify", bset.url, "--deep", *bset.key_args, env=bset.env)
        round_problems = _run_problems(result, [ExitCode.INTEGRITY], "verify --deep")
        if "FAILED" not in result.stderr:
            round_problems.append(f"verify --deep did not say FAILED: {result.stderr.strip()!r}")
        reports = [ln for ln in result.stdout.splitlines() if ln.startswith(("missing:", "corrupt:"))]
        damaged = {c.name for c in cases}
        all_keys = {k for p in bset.points for k in bset.states[p]}
        named_undamaged = sorted(k for k in all_keys - damaged if any(repr(k) in ln for ln in reports))
        if named_undamaged:
            round_problems.append(f"verify --deep also reported undamaged objects {named_undamaged}")
        for case in cases:
            case.verify_problems += round_problems
            points = bset.referencing(case.stored_key)
            if not any(repr(case.name) in ln and any(p in ln for p in points) for ln in reports):
                case.verify_problems.append(
                    f"verify --deep did not report {case.name!r} with a point that holds it ({', '.join(points)}); "
                    f"it reported {reports}"
                )

    def _check_blob_restore(self, bset: BuiltSet, point: str, cases: list[Case]) -> None:
        target = self._new_target()
        result = drctl(
            "backup", "restore", bset.url, target.url, "--point", point, "--quiet", *bset.key_args, env=bset.env
        )
        round_problems = _run_problems(result, [ExitCode.INTEGRITY], "restore")
        if not any(repr(c.name) in result.stderr for c in cases):
            round_problems.append(f"restore's error names none of the damaged objects: {result.stderr.strip()!r}")
        written = target.contents()
        round_problems += self._written_problems(bset.states[point], written, target)
        damaged = {c.name for c in cases}
        for key in bset.states[point].keys() - damaged:
            if key in written:
                self.tally.unaffected_intact += written[key] == bset.states[point][key]
            else:
                self.tally.unaffected_not_written += 1
        if not written:
            self.tally.refused_before_writing += len(cases)
        for case in cases:
            case.restore_problems += round_problems
            if case.name in written:
                case.wrote_affected = True
                right = "its right bytes" if written[case.name] == bset.states[point][case.name] else "wrong bytes"
                case.restore_problems.append(f"restore wrote the damaged object {case.name!r} ({right})")

    def _written_problems(
        self, state: Mapping[str, bytes], written: Mapping[str, bytes], target: RestoreTarget
    ) -> list[str]:
        """Whatever a refused restore wrote must be a whole, right object of the point; nothing else may be left."""
        problems = list(target.leftovers())
        for key, data in written.items():
            if key not in state:
                problems.append(f"restore left {key!r}, which is not an object of the point")
            elif data != state[key]:
                problems.append(f"restore wrote {key!r} with wrong bytes ({len(data)} of {len(state[key])})")
        return problems

    # -- manifests -----------------------------------------------------------------------------------------------

    def _manifest_round(self, bset: BuiltSet, harm: Harm) -> Case:
        point = self.rng.choice(bset.points)
        stored = point_key(point)
        original, how = self._damage(bset.raw, stored, harm)
        case = Case(self.place.name, bset.kind, "manifest", harm.damage, point, stored, how)
        # A deleted point is missing only against a record of the points there should be: the user's, here the
        # copies' own output. verify is given every point taken.
        codes = [ExitCode.NOT_FOUND] if harm.damage == "delete" else [ExitCode.INTEGRITY]
        try:
            inventory = [arg for p in bset.points for arg in ("--point", p)]
            result = drctl("backup", "verify", bset.url, "--deep", *inventory, *bset.key_args, env=bset.env)
            case.verify_problems += _run_problems(result, codes, "verify --deep")
            if point not in result.stderr:
                case.verify_problems.append(f"verify --deep did not name the point: {result.stderr.strip()!r}")
            if harm.damage == "delete":
                self.tally.manifest_deletions += 1
                whole = drctl("backup", "verify", bset.url, "--deep", *bset.key_args, env=bset.env)
                noticed = (
                    whole.returncode in (ExitCode.INTEGRITY, ExitCode.NOT_FOUND) and "Traceback" not in whole.stderr
                )
                self.tally.noticed_by_whole_set_verify += noticed
            self._check_refused_whole(bset, case, codes, point, ("--point", point))
        finally:
            bset.raw.put(stored, original)
        return case

    # -- key material ---------------------------------------------------------------------------------------------

    def _key_round(self, bset: BuiltSet, harm: Harm) -> Case:
        original = bset.raw.read(CONFIG_KEY)
        span = _key_span(original, harm.where) if harm.damage == "flip" and harm.where is not None else None
        original, how = self._damage(bset.raw, CONFIG_KEY, harm, span)
        field_name = "kek_id" if harm.where == "kek_id" else "wrapped_key" if harm.damage == "flip" else "settings"
        case = Case(self.place.name, bset.kind, "key", harm.damage, field_name, CONFIG_KEY, how)
        # A deleted settings file is a missing object; a damaged one fails authentication (the wrapped key) or no
        # longer reads as settings, which the README documents as invalid input ("a malformed setting").
        codes = [ExitCode.NOT_FOUND] if harm.damage == "delete" else [ExitCode.INTEGRITY, ExitCode.INVALID_INPUT]
        try:
            result = drctl("backup", "verify", bset.url, "--deep", *bset.key_args, env=bset.env)
            case.verify_problems += _run_problems(result, codes, "verify --deep")
            if CONFIG_KEY not in result.stderr:
                case.verify_problems.append(f"verify --deep did not name {CONFIG_KEY}: {result.stderr.strip()!r}")
            self._check_refused_whole(bset, case, codes, CONFIG_KEY, ())
        finally:
            bset.raw.put(CONFIG_KEY, original)
        return case

    def _check_refused_whole(
        self, bset: BuiltSet, case: Case, codes: Sequence[ExitCode], name: str, point_args: tuple[str, ...]
    ) -> None:
        """Every object of the point is affected: restore must fail naming ``name`` and write nothing at all."""
        target = self._new_target()
        result = drctl("backup", "restore", bset.url, target.url, *point_args, "--quiet", *bset.key_args, env=bset.env)
        case.restore_problems += _run_problems(result, codes, "restore")
        if name not in result.stderr:
            case.restore_problems.append(f"restore did not name {name}: {result.stderr.strip()!r}")
        written = sorted(target.contents())
        if written:
            case.wrote_affected = True
            case.restore_problems.append(f"restore wrote {written}")
        case.restore_problems += target.leftovers()
        if not written:
            self.tally.refused_before_writing += 1


def summary(player: Player) -> tuple[int, int, str]:
    """Cases, survivors and the figures line's words for one place."""
    cases = player.cases
    n = len(cases)
    t = player.tally
    by_target = ", ".join(f"{sum(c.target == x for c in cases)} {x}" for x in ("blob", "manifest", "key"))
    detail = (
        f"{player.place.name} ({by_target}): verify --deep found {sum(c.found for c in cases)}/{n}; "
        f"restore wrote no affected object in {sum(not c.wrote_affected for c in cases)}/{n} "
        f"({t.refused_before_writing} before writing anything) and refused as the contract says in "
        f"{sum(c.refused for c in cases)}/{n}; "
        f"unaffected objects restored intact {t.unaffected_intact}, not written {t.unaffected_not_written}; "
        f"deleted manifests noticed by a verify without --point {t.noticed_by_whole_set_verify}/{t.manifest_deletions}"
        f"; seed {SEED}"
    )
    return n, sum(c.survived for c in cases), detail


def misses(player: Player) -> Iterator[str]:
    for case in player.cases:
        if not case.survived:
            yield case.describe()
