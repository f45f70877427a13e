from __future__ import annotations

import pytest

from orchestrator.errors import NotFound, Throttled, Transient
from orchestrator.retry import RetryPolicy


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def no_sleep(_: float) -> None:
    return None


def test_transient_errors_are_retried_until_success() -> None:
    fn = Flaky([Transient("blip"), Transient("blip")])
    assert RetryPolicy(attempts=3, sleep=no_sleep).call(fn) == "ok"
    assert fn.calls == 3


def test_attempts_are_bounded_and_the_last_error_is_reraised() -> None:
    fn = Flaky([Transient("one"), Transient("two"), Transient("three"), Transient("four")])
    with pytest.raises(Transient, match="three"):
        RetryPolicy(attempts=3, sleep=no_sleep).call(fn)
    assert fn.calls == 3


def test_throttling_gets_its_own_attempts_and_other_errors_keep_theirs() -> None:
    policy = RetryPolicy(attempts=3, throttled_attempts=8, sleep=no_sleep)
    throttled = Flaky([Throttled("slow down")] * 7)
    assert policy.call(throttled) == "ok"
    assert throttled.calls == 8
    down = Flaky([Transient("refused")] * 7)
    with pytest.raises(Transient, match="refused"):
        policy.call(down)
    assert down.calls == 3
    endless = Flaky([Throttled("slow down")] * 20)
    with pytest.raises(Throttled):
        policy.call(endless)
    assert endless.calls == 8


def test_throttling_without_its_own_attempts_counts_as_any_transient_error() -> None:
    fn = Flaky([Throttled("slow down")] * 5)
    with pytest.raises(Throttled):
        RetryPolicy(attempts=3, sleep=no_sleep).call(fn)
    assert fn.calls == 3


def test_permanent_errors_are_not_retried() -> None:
    fn = Flaky([NotFound("gone")])
    with pytest.raises(NotFound):
        RetryPolicy(attempts=5, sleep=no_sleep).call(fn)
    assert fn.calls == 1


def test_waits_are_jittered_and_capped() -> None:
    waits: list[float] = []
    fn = Flaky([Transient("x")] * 6)
    with pytest.raises(Transient):
        RetryPolicy(attempts=6, initial_wait_s=0.5, max_wait_s=2.0, sleep=waits.append).call(fn)
    assert len(waits) == 5
    assert all(0 <= w <= 2.0 for w in waits)


def test_sdk_errors_are_translated_before_the_policy_decides() -> None:
    class SdkError(Exception):
        pass

    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise SdkError("503")
        return "ok"

    policy = RetryPolicy(attempts=3, sleep=no_sleep)
    assert policy.call_translating(flaky, (SdkError,), lambda e: Transient(str(e))) == "ok"
    assert calls["n"] == 3

    def gone() -> str:
        raise SdkError("404")

    with pytest.raises(NotFound, match="404") as err:
        policy.call_translating(gone, (SdkError,), lambda e: NotFound(str(e)))
    assert isinstance(err.value.__cause__, SdkError)


def test_throttled_waits_are_at_least_half_their_bound_so_a_bucket_has_time_to_refill() -> None:
    """EC2's policy (12 throttled attempts, waits up to 10 s): the waits must add up to more than the 25 s a
    RunInstances bucket needs to refill for a tier of 50, however the jitter falls. Many draws, so a full-jitter
    wait (anywhere from 0) would show."""
    for _ in range(200):
        waits: list[float] = []
        fn = Flaky([Throttled("RequestLimitExceeded")] * 12)
        with pytest.raises(Throttled):
            RetryPolicy(max_wait_s=10.0, throttled_attempts=12, sleep=waits.append).call(fn)
        bounds = [min(10.0, 0.2 * 2**n) for n in range(11)]
        assert all(b / 2 <= w <= b for w, b in zip(waits, bounds, strict=True)), waits
        assert sum(waits) > 25.0
