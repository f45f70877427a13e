"""The shared run lock on LocalStack S3: a conditional write (If-None-Match) admits exactly one holder."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.engine.lock import LockHolder, S3RunLock
from orchestrator.errors import LockHeld
from orchestrator.providers.factory import StoreFactory


def test_only_one_of_many_concurrent_takers_wins(lab_factory: StoreFactory, s3_bucket: str) -> None:
    client = lab_factory.s3_client()

    def take(i: int) -> str | None:
        try:
            S3RunLock(client, s3_bucket, "locks/failover.json").acquire(LockHolder.here(f"run-{i}", "failover.yaml"))
        except LockHeld:
            return None
        return f"run-{i}"

    with ThreadPoolExecutor(8) as pool:
        winners = [w for w in pool.map(take, range(8)) if w]
    assert len(winners) == 1
    with pytest.raises(LockHeld, match=f"locked by run {winners[0]} of failover.yaml"):
        S3RunLock(client, s3_bucket, "locks/failover.json").acquire(LockHolder.here("late", "failover.yaml"))


def test_release_then_reacquire_and_force_unlock(lab_factory: StoreFactory, s3_bucket: str) -> None:
    client = lab_factory.s3_client()
    lock = S3RunLock(client, s3_bucket, "locks/drill.json")
    first = LockHolder.here("run-1", "drill.yaml")
    lock.acquire(first)
    lock.release(LockHolder.here("someone-else", "drill.yaml"))
    with pytest.raises(LockHeld):
        lock.acquire(LockHolder.here("run-2", "drill.yaml"))
    lock.release(first)
    lock.acquire(LockHolder.here("run-2", "drill.yaml"))
    removed = lock.force_unlock()
    assert removed is not None
    assert removed.run_id == "run-2"
    lock.acquire(LockHolder.here("run-3", "drill.yaml"))
