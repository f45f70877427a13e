"""Test helpers for drills: a ledger standing in for the run journal, and how many intervals overlap."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Ledger:
    """``DrillScope.record`` noting each entry, thread-safely (copies are recorded from the launch threads),
    and into ``order`` a line per entry, a log the fakes may share to show what came before what."""

    order: list[str] = field(default_factory=list)
    entries: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, kind: str, location: str, resource_id: str, detail: Mapping[str, Any]) -> None:
        with self._lock:
            self.entries.append((kind, location, resource_id, dict(detail)))
            self.order.append(f"record {kind}")


def peak_in_flight(intervals: Sequence[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant; one ending exactly as another starts does not overlap it."""
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda e: (e[0], e[1]))
    peak = now = 0
    for _, delta in edges:
        now += delta
        peak = max(peak, now)
    return peak
