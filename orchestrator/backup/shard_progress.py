"""A running shard's progress, kept in the set itself, so a shard rerun on another machine resumes.

The copy journal lives on the machine that ran the copy, and a batch engine reruns a failed shard in a new
pod or runner without it. So a shard also writes ``shards/<group>/<I>-of-<N>.progress.json`` every
``CHECKPOINT_S`` seconds (``--checkpoint-every``): the entries it has finished, with their run id, under the
same digest as a shard manifest (an HMAC under the set's key when it is encrypted). A rerun that finds no
unfinished run in its journal takes over that run id and those entries, once their blobs are proven in the
set at their sizes and the source objects are unchanged (as a journal resume does). The file is removed when
the shard finishes.

A progress file that fails its digest is ignored (it only saves work): the shard starts its slice over.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from orchestrator.backup.manifest import RecoveryPoint
from orchestrator.backup.sets import BackupSet
from orchestrator.backup.shards import SHARDS_PREFIX, Shard, ShardInfo, ShardManifest, seal_shard, unseal_shard
from orchestrator.errors import DrError, IntegrityError, NotFound
from orchestrator.providers.base import object_url

CHECKPOINT_S = 30.0
"""Between progress writes: each rewrites every finished entry, so this bounds their cost, not the loss."""


def progress_key(shard: Shard) -> str:
    return f"{SHARDS_PREFIX}{shard.group}/{shard.index}-of-{shard.count}.progress.json"


def load_progress(bset: BackupSet, shard: Shard) -> RecoveryPoint | None:
    """The part a previous run of ``shard`` had finished, or None (none, or one that fails its digest)."""
    key = progress_key(shard)
    try:
        with bset.store.open_read(key) as reader:
            raw = reader.read()
    except NotFound:
        return None
    try:
        part = unseal_shard(raw, object_url(bset.store, key), bset.keys.mac_key if bset.keys else None)
    except IntegrityError:
        return None
    if (part.shard.group, part.shard.index, part.shard.count) != (shard.group, shard.index, shard.count):
        return None
    return part.point


class ShardCheckpoint:
    """Writes ``shard``'s progress when ``every_s`` has passed since the last write (or the start)."""

    def __init__(
        self, bset: BackupSet, shard: Shard, every_s: float = CHECKPOINT_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._bset, self._shard, self._every_s, self._clock = bset, shard, every_s, clock
        self._last = clock()

    def due(self) -> bool:
        return self._clock() - self._last >= self._every_s

    def write(self, part: RecoveryPoint) -> None:
        shard = self._shard
        manifest = ShardManifest(shard=ShardInfo(group=shard.group, index=shard.index, count=shard.count), point=part)
        raw = seal_shard(manifest, self._bset.keys.mac_key if self._bset.keys else None)
        self._bset.store.write(progress_key(shard), io.BytesIO(raw), metadata={"drctl_kind": "shard-progress"})
        self._last = self._clock()

    def remove(self) -> None:
        try:
            self._bset.store.delete(progress_key(self._shard))
        except DrError:
            # The shard manifest is written and is the record; a stale progress file is only read by a rerun,
            # which then finds its entries already in the manifest's blobs.
            return
