"""Backup work stops when its step's ``cancelled()`` turns true (a timeout, or Ctrl-C): between objects and
between chunks of one, with nothing half-written committed and no recovery point claimed; a rerun resumes."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.backup.copy import CopyOptions, execute_copy, plan_copy
from orchestrator.backup.crypto import KeySource
from orchestrator.backup.journal import CopyJournal
from orchestrator.backup.layout import DATA_PREFIX
from orchestrator.backup.restore import restore_point
from orchestrator.backup.sets import BackupSet, NewSetOptions, open_or_create_set
from orchestrator.backup.verify import verify_set
from orchestrator.errors import Cancelled
from orchestrator.providers.memory import MemoryStore

MiB = 1024 * 1024
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def objects(n: int, size: int) -> dict[str, bytes]:
    return {f"obj-{i:02d}": bytes([i]) * size for i in range(n)}


def source_of(data: dict[str, bytes]) -> MemoryStore:
    store = MemoryStore("src")
    for key, value in data.items():
        store.write(key, io.BytesIO(value))
    return store


def new_set() -> BackupSet:
    bset = open_or_create_set(MemoryStore("set"), KeySource(), {}, NewSetOptions(), T0)
    assert bset is not None
    return bset


def after(calls: int) -> Callable[[], bool]:
    """A cancel check that turns true on its ``calls``-th question and stays true, as a deadline does."""
    asked = [0]

    def cancelled() -> bool:
        asked[0] += 1
        return asked[0] >= calls

    return cancelled


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[CopyJournal]:
    j = CopyJournal(tmp_path / "journal.sqlite")
    yield j
    j.close()


def data_blobs(bset: BackupSet) -> list[str]:
    return [o.key for o in bset.store.list(DATA_PREFIX)]


def test_a_cancelled_copy_claims_no_point_and_a_rerun_resumes_what_it_finished(journal: CopyJournal) -> None:
    data = objects(12, 4096)
    source, bset = source_of(data), new_set()
    # One transfer at a time, so the check between objects is reached after each one.
    cancelled = after(5)
    with pytest.raises(Cancelled, match="step timed out or the run was interrupted"):
        execute_copy(
            plan_copy(source, bset, CopyOptions("full")),
            source,
            bset,
            CopyOptions("full", transfers=1, cancelled=cancelled),
            journal,
        )
    assert bset.point_ids() == [], "a cancelled copy must not seal a point"
    finished = len(data_blobs(bset))
    assert 0 < finished < len(data)

    result = execute_copy(plan_copy(source, bset, CopyOptions("full")), source, bset, CopyOptions("full"), journal)
    assert result.resumed_objects == finished
    point = bset.load_point(result.recovery_point)
    assert sorted(e.key for e in point.objects) == sorted(data)


def test_a_copy_cancelled_mid_object_commits_none_of_that_object(journal: CopyJournal) -> None:
    source, bset = source_of({"big": b"x" * (6 * MiB)}), new_set()
    # The first question is before the object starts; the next ones come between its chunks.
    with pytest.raises(Cancelled):
        execute_copy(
            plan_copy(source, bset, CopyOptions("full")),
            source,
            bset,
            CopyOptions("full", cancelled=after(3)),
            journal,
        )
    assert data_blobs(bset) == []
    assert bset.point_ids() == []


def test_a_copy_never_cancelled_is_unchanged(journal: CopyJournal) -> None:
    """The control: the same copy with a check that never fires seals its point."""
    data = objects(3, 4096)
    source, bset = source_of(data), new_set()
    options = CopyOptions("full", transfers=1, cancelled=lambda: False)
    result = execute_copy(plan_copy(source, bset, options), source, bset, options, journal)
    assert bset.point_ids() == [result.recovery_point]


def test_a_cancelled_restore_stops_and_leaves_only_whole_objects(journal: CopyJournal) -> None:
    data = objects(10, 2 * MiB)
    source, bset = source_of(data), new_set()
    result = execute_copy(plan_copy(source, bset, CopyOptions("full")), source, bset, CopyOptions("full"), journal)
    point = bset.load_point(result.recovery_point)
    target = MemoryStore("target")
    with pytest.raises(Cancelled, match="stopped: its step timed out"):
        restore_point(bset, point, target, workers=1, cancelled=after(8))
    restored = {o.key: o.size for o in target.list()}
    assert len(restored) < len(data)
    for key in restored:
        with target.open_read(key) as reader:
            assert reader.read() == data[key], f"{key} was committed incomplete"


def test_a_cancelled_deep_verify_stops_with_cancelled_not_a_verdict(journal: CopyJournal) -> None:
    data = objects(4, MiB)
    source, bset = source_of(data), new_set()
    execute_copy(plan_copy(source, bset, CopyOptions("full")), source, bset, CopyOptions("full"), journal)
    with pytest.raises(Cancelled, match="stopped: its step timed out"):
        verify_set(bset, deep=True, workers=1, cancelled=after(2))
    assert verify_set(bset, deep=True).ok
