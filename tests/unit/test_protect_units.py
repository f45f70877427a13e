"""``drctl protect``'s logic above the providers: the schedule's arithmetic, reading S3 events from SQS
(an in-memory queue), and the alert state machine."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ExitCode
from orchestrator.protect.alerts import LagAlerts
from orchestrator.protect.changes import SqsEvents
from orchestrator.protect.schedule import BUDGET_SHARE, COPY_FACTOR, MIN_POLL_S, copy_estimate, derive
from tests.support.cli import assert_one_line_error, drctl
from tests.support.protect import ProtectProcess


def test_polling_waits_what_the_budget_leaves_after_a_copy() -> None:
    schedule = derive(60, event_driven=False, copy_s=4.0)
    assert schedule.feasible
    assert schedule.wait_s == pytest.approx(60 * BUDGET_SHARE - 4 * COPY_FACTOR)
    assert schedule.worst_lag_s <= 60 * BUDGET_SHARE


def test_events_gather_a_burst_but_start_a_point_within_the_budget() -> None:
    schedule = derive(60, event_driven=True, copy_s=4.0, reconcile_s=300)
    assert schedule.feasible
    assert 1.0 <= schedule.wait_s <= (60 * BUDGET_SHARE - 4 * COPY_FACTOR) / 2
    assert schedule.reconcile_s == 300


def test_a_copy_too_slow_for_the_objective_is_named_with_the_rpo_it_needs() -> None:
    schedule = derive(30, event_driven=False, copy_s=20.0)
    assert not schedule.feasible
    needed = (MIN_POLL_S + 20 * COPY_FACTOR) / BUDGET_SHARE
    assert f"at least {needed:.0f}s" in schedule.why
    assert any(line.startswith("NOT feasible") for line in schedule.describe())


def test_an_rpo_under_the_floor_is_never_feasible() -> None:
    assert not derive(5, event_driven=True, copy_s=0.01).feasible
    assert "--rpo 10s" in derive(5, event_driven=True, copy_s=0.01).why


def test_the_copy_estimate_follows_a_slowdown_but_ignores_one_fast_copy() -> None:
    assert copy_estimate([]) is None
    assert copy_estimate([2, 2, 2, 2, 10]) == pytest.approx(6)  # pulled toward the newest, slower copy
    assert copy_estimate([10, 10, 10, 10, 1]) == pytest.approx(10)  # one fast copy does not hide the rest


class FakeSqs:
    """An SQS queue in memory: messages stay until deleted with their newest receipt handle."""

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}
        self.receipts: dict[str, str] = {}
        self.serial = 0

    def send(self, body: dict[str, Any]) -> str:
        self.serial += 1
        message_id = f"m{self.serial}"
        self.messages[message_id] = json.dumps(body)
        return message_id

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        out = []
        for message_id, body in self.messages.items():
            self.serial += 1
            self.receipts[message_id] = f"r{self.serial}"
            out.append({"MessageId": message_id, "ReceiptHandle": self.receipts[message_id], "Body": body})
        return {"Messages": out[: kwargs["MaxNumberOfMessages"]]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        del QueueUrl
        for entry in Entries:
            for message_id, receipt in list(self.receipts.items()):
                if receipt == entry["ReceiptHandle"]:
                    self.messages.pop(message_id, None)
        return {}


def record(key: str, when: str, bucket: str = "b", name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "Records": [{"eventTime": when, "eventName": name, "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]
    }


def test_events_of_the_prefix_are_pending_until_the_point_that_covers_them_is_sealed() -> None:
    sqs = FakeSqs()
    events = SqsEvents(sqs, "url", "b", "data/", visibility_s=60)
    sqs.send({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    sqs.send(record("other/x", "2026-12-04T00:00:01Z"))
    sqs.send(record("data/a%20b", "2026-12-04T00:00:05Z"))  # keys arrive URL-encoded
    sqs.send(record("data/c", "2026-12-04T00:00:03.5Z", name="ObjectRemoved:Delete"))
    events.wait(1)
    assert events.oldest_pending() == datetime(2026, 12, 4, 0, 0, 3, 500000, tzinfo=UTC)
    assert len(sqs.messages) == 2  # the test event and another prefix's were deleted at once
    mark = events.covered_now()
    late = sqs.send(record("data/d", "2026-12-04T00:00:09Z"))
    events.wait(1)  # receives d, and a and c again with new receipts (their visibility ran out)
    assert events.ack(mark) == 2
    assert list(sqs.messages) == [late]  # deleted with their newest receipts; d waits for the next point
    assert events.oldest_pending() == datetime(2026, 12, 4, 0, 0, 9, tzinfo=UTC)


def test_a_message_seen_again_keeps_its_first_time() -> None:
    sqs = FakeSqs()
    events = SqsEvents(sqs, "url", "b", "", visibility_s=60)
    sqs.send(record("k", "2026-12-04T00:00:05Z"))
    events.wait(1)
    events.wait(1)
    assert events.oldest_pending() == datetime(2026, 12, 4, 0, 0, 5, tzinfo=UTC)


def test_alerts_fire_once_past_the_objective_and_resolve_once_back() -> None:
    said: list[str] = []
    alerts = LagAlerts("az://v/set/", 60, said.append)
    for lag in (10, 61, 90, 120, 59, 30, 61):
        alerts.check(lag)
    assert [s.split()[0] for s in said] == ["ALERT", "RESOLVED", "ALERT"]
    assert "past its RPO of 60s" in said[0]


def test_a_failing_alert_webhook_is_counted_not_fatal() -> None:
    said: list[str] = []
    errors: list[str] = []
    alerts = LagAlerts("az://v/set/", 60, said.append, webhook="http://127.0.0.1:9/hook", on_error=errors.append)
    alerts.check(100)
    assert errors == ["alert"]
    assert alerts.firing
    assert "the alert webhook failed" in said[-1]
    assert "127.0.0.1:9" not in " ".join(said)  # a webhook URL carries its token: never printed


def test_one_protect_per_set_a_second_is_refused_with_the_lock_error(tmp_path: Path) -> None:
    """Two services writing one set would race on its points; the set lock that ``backup copy`` takes keeps
    the second out (exit 3), on local directories (no cloud involved)."""
    source, vault = tmp_path / "source", tmp_path / "vault"
    source.mkdir()
    (source / "a.txt").write_text("a")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DRCTL_STATE_DIR": str(tmp_path / "state")}
    first = ProtectProcess([str(source), str(vault), "--rpo", "1m"], env)
    try:
        first.wait_for("the first point", lambda: first.sealed() >= 1)
        second = drctl("protect", str(source), str(vault), "--rpo", "1m", env=env)
        assert_one_line_error(second, ExitCode.LOCK_HELD, "backup set", "wait for it to finish")
        assert first.terminate() == 0
    finally:
        first.close()
