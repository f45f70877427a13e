"""Where things live inside a backup set, under the set's location (its bucket/container/directory + prefix):

    drctl-set.json                  the set's settings: format, compression, encryption (wrapped data key)
    points/<UTC time>-<id>.json     recovery points (manifests), written last and atomically
    data/<ab>/<blob id>             object contents, one blob per source object version

A blob's id is derived from the source object's identity (location, key, size, etag), never from its content,
so that an encrypted set does not reveal the hashes of what it holds, and a re-run of an interrupted copy
writes to the same names instead of leaving orphans. Blobs are immutable once a manifest refers to them.
"""

from __future__ import annotations

import hashlib

CONFIG_KEY = "drctl-set.json"
POINTS_PREFIX = "points/"
DATA_PREFIX = "data/"


def blob_id(source_url: str, key: str, size: int, etag: str | None) -> str:
    identity = "\0".join((source_url, key, str(size), etag or ""))
    return hashlib.sha256(identity.encode()).hexdigest()


def blob_key(blob: str) -> str:
    return f"{DATA_PREFIX}{blob[:2]}/{blob}"


def point_key(point_id: str) -> str:
    return f"{POINTS_PREFIX}{point_id}.json"
