"""The shared run lock on LocalStack S3 as a lease: one holder among concurrent takers, a fencing token that
only grows, expiry judged by S3's clock and taken over, a holder that lost its lease unable to release the
new holder's lock, and a journal that refuses writes once the lease is lost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import pytest

from orchestrator.engine.journal import RunJournal
from orchestrator.engine.lock import LockHolder
from orchestrator.engine.s3_lease import S3Lease
from orchestrator.errors import LockHeld, LockLost
from orchestrator.providers.factory import StoreFactory

KEY = "locks/failover.json"


@pytest.fixture
def leases(lab_factory: StoreFactory, s3_bucket: str) -> Iterator[list[tuple[S3Lease, LockHolder]]]:
    """Leases a test took, released at its end so no heartbeat thread outlives it."""
    taken: list[tuple[S3Lease, LockHolder]] = []
    yield taken
    for lease, holder in taken:
        lease.release(holder)


def take(
    leases: list[tuple[S3Lease, LockHolder]], factory: StoreFactory, bucket: str, run_id: str, ttl_s: float = 60
) -> S3Lease:
    lease = S3Lease(factory.s3_client(), bucket, KEY, ttl_s=ttl_s)
    holder = LockHolder.here(run_id, "failover.yaml")
    lease.acquire(holder)
    leases.append((lease, holder))
    return lease


def lock_doc(factory: StoreFactory, bucket: str) -> dict[str, object]:
    doc = json.loads(factory.s3_client().get_object(Bucket=bucket, Key=KEY)["Body"].read())
    assert isinstance(doc, dict)
    return doc


def until(condition: object, seconds: float = 20) -> None:
    """Poll ``condition`` (a callable) until true: leases move with real time, so tests wait for the event."""
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the lease never reached the expected state"
        time.sleep(0.1)


def test_only_one_of_many_concurrent_takers_wins(
    lab_factory: StoreFactory, s3_bucket: str, leases: list[tuple[S3Lease, LockHolder]]
) -> None:
    def attempt(i: int) -> str | None:
        try:
            take(leases, lab_factory, s3_bucket, f"run-{i}")
        except LockHeld:
            return None
        return f"run-{i}"

    with ThreadPoolExecutor(8) as pool:
        winners = [w for w in pool.map(attempt, range(8)) if w]
    assert len(winners) == 1
    with pytest.raises(LockHeld, match=f"locked by run {winners[0]} of failover.yaml.*drctl unlock {winners[0]}"):
        take(leases, lab_factory, s3_bucket, "late")


def test_the_fencing_token_only_grows_across_release_takeover_and_force_unlock(
    lab_factory: StoreFactory, s3_bucket: str, leases: list[tuple[S3Lease, LockHolder]]
) -> None:
    first = take(leases, lab_factory, s3_bucket, "run-1")
    assert first.token == 1
    first.release(leases.pop()[1])
    assert lock_doc(lab_factory, s3_bucket)["state"] == "released"
    second = take(leases, lab_factory, s3_bucket, "run-2")
    assert second.token == 2
    removed = S3Lease(lab_factory.s3_client(), s3_bucket, KEY).force_unlock()
    assert removed is not None
    assert removed.run_id == "run-2"
    third = take(leases, lab_factory, s3_bucket, "run-3")
    assert third.token == 4  # the force unlock moved the token on too


def test_a_crashed_holders_lease_expires_by_s3s_clock_and_is_taken_over(
    lab_factory: StoreFactory, s3_bucket: str, leases: list[tuple[S3Lease, LockHolder]]
) -> None:
    # A holder on another machine wrote its lease and died: nothing renews it.
    crashed = {"holder": asdict(LockHolder.here("crashed", "failover.yaml")), "token": 7, "ttl_s": 2, "state": "held"}
    lab_factory.s3_client().put_object(Bucket=s3_bucket, Key=KEY, Body=json.dumps(crashed).encode())
    with pytest.raises(LockHeld, match="locked by run crashed"):
        take(leases, lab_factory, s3_bucket, "early")

    taker = S3Lease(lab_factory.s3_client(), s3_bucket, KEY, ttl_s=60)
    holder = LockHolder.here("taker", "failover.yaml")

    def taken() -> bool:
        try:
            taker.acquire(holder)
        except LockHeld:
            return False
        leases.append((taker, holder))
        return True

    until(taken)
    assert taker.token == 8
    assert taker.took_over is not None
    assert taker.took_over.run_id == "crashed"


def test_a_holder_that_lost_its_lease_is_fenced_and_cannot_release_the_new_holders_lock(
    lab_factory: StoreFactory, s3_bucket: str, leases: list[tuple[S3Lease, LockHolder]], tmp_path: Path
) -> None:
    slow = take(leases, lab_factory, s3_bucket, "slow", ttl_s=1.5)
    journal = RunJournal(tmp_path / "runs.sqlite")
    journal.fence(slow.check)
    journal.event("r", "log", "written while the lease is ours")
    # Its lease ran out while it was paused, and another run took the lock over (as S3Lease.acquire would).
    newer = {"holder": asdict(LockHolder.here("newer", "failover.yaml")), "token": 2, "ttl_s": 60, "state": "held"}
    lab_factory.s3_client().put_object(Bucket=s3_bucket, Key=KEY, Body=json.dumps(newer).encode())

    def fenced() -> bool:
        try:
            slow.check()
        except LockLost:
            return True
        return False

    until(fenced)  # its next heartbeat is refused (412): the lease is lost
    with pytest.raises(LockLost, match="someone took it over or unlocked it"):
        journal.event("r", "log", "must not be written")
    journal.close()
    slow_holder = leases.pop()[1]
    slow.release(slow_holder)
    assert lock_doc(lab_factory, s3_bucket) == newer, "the slow holder released a lock that was no longer its own"


def test_a_lease_not_renewed_for_a_whole_ttl_is_treated_as_lost(
    lab_factory: StoreFactory, s3_bucket: str, leases: list[tuple[S3Lease, LockHolder]]
) -> None:
    """S3 unreachable for a TTL: the holder cannot know nobody took over, so it stops (a fake clock jumps)."""
    now = [1000.0]
    lease = S3Lease(lab_factory.s3_client(), s3_bucket, KEY, ttl_s=60, monotonic=lambda: now[0])
    holder = LockHolder.here("cut-off", "failover.yaml")
    lease.acquire(holder)
    leases.append((lease, holder))
    lease.check()
    now[0] += 59
    lease.check()
    now[0] += 1
    with pytest.raises(LockLost, match="not renewed for 60s"):
        lease.check()


def test_a_lock_from_a_drctl_before_leases_is_held_until_unlocked(
    lab_factory: StoreFactory, s3_bucket: str, leases: list[tuple[S3Lease, LockHolder]]
) -> None:
    old = asdict(LockHolder.here("old-run", "failover.yaml"))
    lab_factory.s3_client().put_object(Bucket=s3_bucket, Key=KEY, Body=json.dumps(old).encode())
    with pytest.raises(LockHeld, match="no expiry"):
        take(leases, lab_factory, s3_bucket, "new-run")
    assert S3Lease(lab_factory.s3_client(), s3_bucket, KEY).unlock("old-run") is not None
    assert take(leases, lab_factory, s3_bucket, "new-run").token == 2  # the unlock took token 1
