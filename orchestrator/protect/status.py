"""What ``drctl protect`` leaves in the set for runbooks and reports: its objective, and when it last had the
set in sync with the source (``drctl-protect.json`` beside ``drctl-set.json``).

A restore of the set then knows more than the point's age: that a service was keeping the set within an RPO,
and when it last confirmed it. The report compares that moment with the disaster instant. The file holds no
secret (a source URL, times and an objective); it is rewritten after every sync, never read by the data path.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass

from orchestrator.errors import NotFound
from orchestrator.providers.base import ObjectStore

STATUS_KEY = "drctl-protect.json"


@dataclass(frozen=True)
class ProtectStatus:
    source: str
    rpo_s: float
    synced_at: str
    """When the listing of the newest sync started (ISO 8601, UTC): the set held the source as of then."""
    written_at: str

    def to_json(self) -> bytes:
        return json.dumps({"kind": "drctl-protect-status", **asdict(self)}, indent=2).encode()


def write_status(store: ObjectStore, status: ProtectStatus) -> None:
    store.write(STATUS_KEY, io.BytesIO(status.to_json()))


def read_status(store: ObjectStore) -> ProtectStatus | None:
    """The set's protect status; None when no protect ever ran on it, or the file is not one of ours."""
    try:
        with store.open_read(STATUS_KEY) as reader:
            doc = json.loads(reader.read())
    except (NotFound, ValueError):
        return None
    try:
        return ProtectStatus(str(doc["source"]), float(doc["rpo_s"]), str(doc["synced_at"]), str(doc["written_at"]))
    except (KeyError, TypeError, ValueError):
        return None
