"""Shards of one copy: which slice of the source a shard owns, and the manifest each shard leaves in the set.

A sharded copy splits the source's key space into N disjoint slices by a hash of each key, so every process
of a batch engine (a Kubernetes Indexed Job, an AWS Batch array, a CI matrix) can list the source itself, in
whatever order the service lists it, and keep exactly its own keys: no coordinator hands out work, and a
rerun of a shard owns the same keys as the first attempt.

Each finished shard writes ``shards/<group>/<index>-of-<count>.json``: the part of a recovery point it copied,
with a digest (an HMAC under the set's MAC key when the set is encrypted, as recovery points have), so a
shard manifest edited or truncated in the set is refused at seal time rather than sealed into a point.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from orchestrator.backup.manifest import FORMAT, DocumentError, Format, RecoveryPoint, _Document, document_digest
from orchestrator.errors import IntegrityError, InvalidInput

SHARDS_PREFIX = "shards/"
DEFAULT_GROUP = "default"
MAX_SHARDS = 10_000
# Object names stay portable across S3, Azure and directories, and a group never escapes its folder.
_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (from 0, as engines number their workers) of ``count`` slices of the key space."""

    index: int
    count: int
    group: str = DEFAULT_GROUP

    def owns(self, key: str) -> bool:
        # A cryptographic hash spreads any naming scheme (dates, sequential ids, one big prefix) evenly;
        # 8 bytes make the modulo's bias negligible for any count drctl accepts.
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def manifest_key(self) -> str:
        return shard_manifest_key(self.group, self.index, self.count)


def shard_manifest_key(group: str, index: int, count: int) -> str:
    return f"{SHARDS_PREFIX}{group}/{index}-of-{count}.json"


def check_group(group: str) -> str:
    if not _GROUP.fullmatch(group):
        raise InvalidInput(
            f"shard group {group!r} is not a valid name; use up to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (an engine's job or run id fits)"
        )
    return group


def check_count(count: int, option: str = "--shards") -> int:
    if not 1 <= count <= MAX_SHARDS:
        raise InvalidInput(f"{option} must be between 1 and {MAX_SHARDS}, got {count}")
    return count


def parse_shard(text: str, group: str = DEFAULT_GROUP) -> Shard:
    """``I/N`` with 0 <= I < N: the form of ``--shard`` and of a runbook's shard."""
    match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", text)
    if match is None:
        raise InvalidInput(
            f"--shard {text!r} is not I/N; give the shard's index from 0 and the number of shards, e.g. 0/4 "
            "(Kubernetes' JOB_COMPLETION_INDEX and AWS Batch's AWS_BATCH_JOB_ARRAY_INDEX count from 0 too)"
        )
    index, count = int(match[1]), check_count(int(match[2]), "--shard's N")
    if index >= count:
        raise InvalidInput(f"--shard {index}/{count}: the index counts from 0, so it must be below {count}")
    return Shard(index, count, check_group(group))


class ShardInfo(_Document):
    group: str
    index: Annotated[int, Field(ge=0)]
    count: Annotated[int, Field(ge=1)]


class ShardManifest(_Document):
    """What one shard copied: its part of the recovery point the seal will write. ``point.id`` is the shard's
    run id, which its entries name in ``written_by``; ``point.parent`` is the base point it compared against."""

    format: Format = FORMAT
    shard: ShardInfo
    point: RecoveryPoint


class _SealedShard(_Document):
    digest: str
    manifest: ShardManifest


def _body(manifest: ShardManifest) -> bytes:
    return json.dumps(manifest.to_doc(), sort_keys=True, separators=(",", ":")).encode()


def seal_shard(manifest: ShardManifest, mac_key: bytes | None) -> bytes:
    body = _body(manifest)
    return json.dumps({"digest": document_digest(body, mac_key), "manifest": json.loads(body)}).encode()


def unseal_shard(raw: bytes, name: str, mac_key: bytes | None) -> ShardManifest:
    """Parse and check a shard manifest; anything edited, truncated or malformed raises ``IntegrityError``."""
    fix = "run that shard again (it resumes) to rewrite it"
    try:
        envelope = _SealedShard._read(raw, "shard manifest")
    except DocumentError as exc:
        raise IntegrityError(f"shard manifest {name} is not valid ({exc}); {fix}") from exc
    if not hmac.compare_digest(document_digest(_body(envelope.manifest), mac_key).encode(), envelope.digest.encode()):
        raise IntegrityError(f"shard manifest {name} fails its checksum: it was edited or corrupted; {fix}")
    return envelope.manifest
