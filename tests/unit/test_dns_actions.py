"""``dns.failover`` and ``dns.failback`` run against an in-memory ``Dns``: outputs, idempotence, the INSYNC
wait (with an injected clock, never real sleeps), and parameters that refuse to guess a record."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from pydantic import ValidationError

from orchestrator.actions import dns_failback, dns_failover
from orchestrator.actions.base import StepStatus
from orchestrator.engine.context import StepContext
from orchestrator.errors import AuthError, NotFound, Permanent, PermissionDenied, ProviderError, Transient
from orchestrator.providers import choice
from orchestrator.providers.dns import ChangeResult, ChangeStatus, Dns, RecordSet, fqdn, wait_insync
from orchestrator.providers.route53 import translate_route53_error

ZONE = "drill.example."
NAME = "app.drill.example"


@dataclass
class FakeDns:
    """Records in memory; each change stays PENDING for ``pending_polls`` status reads."""

    records_by_key: dict[tuple[str, str], list[RecordSet]] = field(default_factory=dict)
    pending_polls: int = 0
    submitted: list[str] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)

    def zone_id(self, zone: str) -> str:
        if fqdn(zone) != ZONE:
            raise NotFound(f"no hosted zone named {zone}")
        return "ZFAKE"

    def records(self, zone: str, name: str, type: str) -> tuple[RecordSet, ...]:
        self.zone_id(zone)
        return tuple(self.records_by_key.get((fqdn(name), type), []))

    def _submit(self) -> str:
        change_id = f"C{len(self.submitted) + 1}"
        self.submitted.append(change_id)
        return change_id

    def promote(self, zone: str, name: str, type: str, set_identifier: str) -> ChangeResult:
        current = list(self.records(zone, name, type))
        if set_identifier not in {r.set_identifier for r in current}:
            raise NotFound(f"no failover record {set_identifier}")
        previous = " ".join(r.describe() for r in current)
        new_records = [
            replace(r, failover="PRIMARY" if r.set_identifier == set_identifier else "SECONDARY") for r in current
        ]
        new = " ".join(r.describe() for r in new_records)
        if new_records == current:
            return ChangeResult(False, None, previous, previous)
        self.records_by_key[(fqdn(name), type)] = new_records
        return ChangeResult(True, self._submit(), previous, new)

    def point(self, zone: str, name: str, type: str, values: tuple[str, ...], ttl: int) -> ChangeResult:
        current = self.records(zone, name, type)
        previous = current[0].describe() if current else ""
        target = RecordSet(fqdn(name), type, ttl, values)
        if current and current[0] == target:
            return ChangeResult(False, None, previous, previous)
        self.records_by_key[(fqdn(name), type)] = [target]
        return ChangeResult(True, self._submit(), previous, target.describe())

    def remove(self, zone: str, name: str, type: str) -> ChangeResult:
        current = self.records(zone, name, type)
        if not current:
            return ChangeResult(False, None, "", "")
        del self.records_by_key[(fqdn(name), type)]
        return ChangeResult(True, self._submit(), current[0].describe(), "")

    def change_status(self, change_id: str) -> ChangeStatus:
        if change_id not in self.submitted:
            raise NotFound(f"change {change_id}")
        self.polls[change_id] = self.polls.get(change_id, 0) + 1
        return "INSYNC" if self.polls[change_id] > self.pending_polls else "PENDING"


def failover_pair() -> list[RecordSet]:
    return [
        RecordSet(fqdn(NAME), "A", 60, ("10.0.0.1",), "primary", "PRIMARY", "hc-1"),
        RecordSet(fqdn(NAME), "A", 60, ("10.0.0.2",), "recovery", "SECONDARY"),
    ]


@dataclass
class FakeTime:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def context(fake_time: FakeTime, deadline: float | None = None) -> StepContext:
    logs: list[str] = []
    return StepContext(
        step_id="dns",
        mode="drill",
        env={},
        stack=None,
        deadline=deadline,
        stop=threading.Event(),
        clock=fake_time.clock,
        sink=logs.append,
        sleep=fake_time.sleep,
    )


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns({(fqdn(NAME), "A"): failover_pair()})
    monkeypatch.setattr(choice, "route53_service", lambda env: fake)
    return fake


def failover_params(**extra: Any) -> dns_failover.Params:
    return dns_failover.Params.model_validate({"zone": ZONE, "name": NAME, "type": "A", **extra})


def failback_params(**extra: Any) -> dns_failback.Params:
    return dns_failback.Params.model_validate({"zone": ZONE, "name": NAME, "type": "A", **extra})


def roles(fake: FakeDns) -> dict[str | None, str | None]:
    return {r.set_identifier: r.failover for r in fake.records_by_key[(fqdn(NAME), "A")]}


def test_fake_satisfies_the_protocol(dns: FakeDns) -> None:
    assert isinstance(dns, Dns)


def test_failover_then_failback_with_outputs(dns: FakeDns) -> None:
    dns.pending_polls = 2
    t = FakeTime()
    result = dns_failover.run(failover_params(recovery="recovery", interval="5s"), context(t))
    assert result.status is StepStatus.SUCCEEDED, result.message
    assert roles(dns) == {"primary": "SECONDARY", "recovery": "PRIMARY"}
    assert result.outputs == {
        "change_id": "C1",
        "changed": True,
        "previous": "PRIMARY=primary(10.0.0.1) SECONDARY=recovery(10.0.0.2)",
        "new": "SECONDARY=primary(10.0.0.1) PRIMARY=recovery(10.0.0.2)",
        "insync_s": 10.0,
    }
    assert t.slept == [5.0, 5.0]
    assert set(result.outputs) == dns_failover.SPEC.outputs

    back = dns_failback.run(failback_params(primary="primary"), context(FakeTime()))
    assert back.status is StepStatus.SUCCEEDED
    assert roles(dns) == {"primary": "PRIMARY", "recovery": "SECONDARY"}
    assert back.outputs["change_id"] == "C2"
    assert back.outputs["changed"] is True
    assert set(back.outputs) == dns_failback.SPEC.outputs


def test_repeated_failover_changes_nothing(dns: FakeDns) -> None:
    params = failover_params(recovery="recovery")
    first = dns_failover.run(params, context(FakeTime()))
    again = dns_failover.run(params, context(FakeTime()))
    assert first.outputs["changed"] is True
    assert again.status is StepStatus.SUCCEEDED
    assert again.outputs["changed"] is False
    assert again.outputs["change_id"] == ""
    assert again.outputs["previous"] == again.outputs["new"] == first.outputs["new"]
    assert again.message == "already in effect"
    assert dns.submitted == ["C1"]


def test_failback_when_already_primary_changes_nothing(dns: FakeDns) -> None:
    result = dns_failback.run(failback_params(primary="primary"), context(FakeTime()))
    assert result.status is StepStatus.SUCCEEDED
    assert result.outputs["changed"] is False
    assert dns.submitted == []


def test_endpoint_mode_upserts_a_simple_record_idempotently(dns: FakeDns) -> None:
    dns.records_by_key[(fqdn("www.drill.example"), "CNAME")] = [
        RecordSet(fqdn("www.drill.example"), "CNAME", 300, ("primary.example.net",))
    ]
    common = {"zone": ZONE, "name": "www.drill.example", "type": "CNAME"}
    over = dns_failover.Params.model_validate({**common, "endpoint": "recovery.example.net", "ttl": 30})
    result = dns_failover.run(over, context(FakeTime()))
    assert result.outputs["previous"] == "primary.example.net"
    assert result.outputs["new"] == "recovery.example.net"
    assert dns_failover.run(over, context(FakeTime())).outputs["changed"] is False
    back = dns_failback.Params.model_validate({**common, "endpoint": "primary.example.net", "ttl": 300})
    assert dns_failback.run(back, context(FakeTime())).outputs["new"] == "primary.example.net"
    assert dns.submitted == ["C1", "C2"]


def test_not_insync_within_timeout_times_out_naming_the_change(dns: FakeDns) -> None:
    dns.pending_polls = 100
    t = FakeTime()
    result = dns_failover.run(failover_params(recovery="recovery", timeout="12s", interval="5s"), context(t))
    assert result.status is StepStatus.TIMED_OUT
    assert not result.retryable
    assert "C1" in result.message
    assert t.slept == [5.0, 5.0, 2.0]
    assert result.outputs["insync_s"] == 12.0


def test_step_deadline_stops_the_wait(dns: FakeDns) -> None:
    dns.pending_polls = 100
    t = FakeTime()
    result = dns_failover.run(failover_params(recovery="recovery"), context(t, deadline=t.now + 7))
    assert result.status is StepStatus.TIMED_OUT
    assert sum(t.slept) == 7.0


def test_missing_record_is_not_found(dns: FakeDns) -> None:
    with pytest.raises(NotFound):
        dns_failover.run(failover_params(recovery="nope"), context(FakeTime()))
    with pytest.raises(NotFound):
        dns_failover.run(
            dns_failover.Params.model_validate({"zone": "other.", "name": NAME, "type": "A", "recovery": "x"}),
            context(FakeTime()),
        )


@pytest.mark.parametrize(
    "with_",
    [
        {"name": NAME, "type": "A", "recovery": "r"},  # no zone
        {"zone": ZONE, "type": "A", "recovery": "r"},  # no record name
        {"zone": ZONE, "name": NAME, "recovery": "r"},  # no type
        {"zone": ZONE, "name": NAME, "type": "A"},  # neither recovery nor endpoint
        {"zone": ZONE, "name": NAME, "type": "A", "recovery": "r", "endpoint": "10.0.0.2"},
        {"zone": ZONE, "name": NAME, "type": "A", "recovery": "r", "ttl": 60},  # ttl only with endpoint
        {"zone": ZONE, "name": NAME, "type": "A", "recovery": "r", "primary": "p"},  # unknown key
        {"zone": "", "name": NAME, "type": "A", "recovery": "r"},
    ],
)
def test_params_must_name_the_record_and_one_target(with_: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        dns_failover.Params.model_validate(with_)


def test_failback_params_use_primary() -> None:
    with pytest.raises(ValidationError):
        dns_failback.Params.model_validate({"zone": ZONE, "name": NAME, "type": "A", "recovery": "r"})
    p = failback_params(primary="primary")
    touches = [str(t) for t in dns_failback.SPEC.touches(p)]
    assert touches == [
        f"writes dns A {NAME} in zone {ZONE} -> PRIMARY=primary",
        "waits until the change is INSYNC (at most 10m)",
    ]


def test_wait_insync_stops_when_sleep_is_cut_short() -> None:
    fake = FakeDns(pending_polls=100)
    fake.submitted.append("C9")
    t = FakeTime()

    def cut(seconds: float) -> bool:
        t.sleep(seconds)
        return False

    waited = wait_insync(fake, "C9", timeout_s=60, interval_s=5, sleep=cut, clock=t.clock)
    assert not waited.insync
    assert fake.polls["C9"] == 1
    assert waited.seconds == 5.0


def client_error(code: str, status: int, message: str = "m") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},  # type: ignore[typeddict-item]
        "ChangeResourceRecordSets",
    )


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("NoSuchHostedZone", 404), NotFound),
        (client_error("NoSuchChange", 404), NotFound),
        (client_error("InvalidChangeBatch", 400, "RRSet already exists"), Permanent),
        (client_error("Throttling", 400), Transient),
        (client_error("PriorRequestNotComplete", 400), Transient),
        (client_error("InternalFailure", 500), Transient),
        (client_error("ServiceUnavailable", 503), Transient),
        (client_error("AccessDenied", 403), PermissionDenied),
        (client_error("InvalidClientTokenId", 403), AuthError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Transient),
    ],
)
def test_route53_errors_are_translated(exc: Exception, kind: type[ProviderError]) -> None:
    err = translate_route53_error(exc, "A app.example.com. in zone Z1")
    assert type(err) is kind
    assert "A app.example.com. in zone Z1" in str(err)


def test_invalid_change_batch_keeps_the_reason() -> None:
    err = translate_route53_error(client_error("InvalidChangeBatch", 400, "RRSet already exists"), "A x.")
    assert "RRSet already exists" in str(err)
