"""``Route53Dns`` against LocalStack's Route53: a unique zone with a health-checked PRIMARY and a SECONDARY
failover record, failed over and back, repeated without effect, and error classes; everything made here is
deleted again. LocalStack applies changes at once (INSYNC on submit), so the PENDING path of the INSYNC wait
is covered by ``tests/unit/test_dns_actions.py``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError

from orchestrator.errors import NotFound, Permanent
from orchestrator.providers.dns import Dns, fqdn, wait_insync
from orchestrator.providers.route53 import Route53Dns, route53_client
from orchestrator.retry import RetryPolicy

pytestmark = pytest.mark.lab


@dataclass(frozen=True)
class Lab:
    dns: Route53Dns
    zone_id: str
    zone_name: str
    record: str
    health_check_id: str


@pytest.fixture
def lab(lab_env: dict[str, str]) -> Iterator[Lab]:
    client = route53_client(lab_env)
    zone_name = f"t-dns-{uuid.uuid4().hex[:12]}.drill.test."
    zone_id = client.create_hosted_zone(Name=zone_name, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    health_check_id = ""
    try:
        health_check_id = client.create_health_check(
            CallerReference=uuid.uuid4().hex,
            HealthCheckConfig={"Type": "HTTP", "IPAddress": "192.0.2.10", "Port": 80, "ResourcePath": "/health"},
        )["HealthCheck"]["Id"]
        record = f"app.{zone_name}"
        client.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": record,
                            "Type": "A",
                            "SetIdentifier": "primary",
                            "Failover": "PRIMARY",
                            "TTL": 60,
                            "ResourceRecords": [{"Value": "192.0.2.10"}],
                            "HealthCheckId": health_check_id,
                        },
                    },
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": record,
                            "Type": "A",
                            "SetIdentifier": "recovery",
                            "Failover": "SECONDARY",
                            "TTL": 60,
                            "ResourceRecords": [{"Value": "198.51.100.20"}],
                        },
                    },
                ]
            },
        )
        retry = RetryPolicy(attempts=3, initial_wait_s=0.05, max_wait_s=0.5)
        yield Lab(Route53Dns(client, retry=retry), zone_id.rsplit("/", 1)[-1], zone_name, record, health_check_id)
    finally:
        for rrs in client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]:
            if rrs["Type"] not in ("NS", "SOA"):
                client.change_resource_record_sets(
                    HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": rrs}]}
                )
        client.delete_hosted_zone(Id=zone_id)
        if health_check_id:
            client.delete_health_check(HealthCheckId=health_check_id)
        with pytest.raises(ClientError):
            client.get_hosted_zone(Id=zone_id)


def roles(dns: Dns, zone: str, record: str) -> dict[str | None, tuple[str | None, tuple[str, ...]]]:
    return {r.set_identifier: (r.failover, r.values) for r in dns.records(zone, record, "A")}


def test_satisfies_the_protocol(lab: Lab) -> None:
    assert isinstance(lab.dns, Dns)


def test_zone_by_name_or_id(lab: Lab) -> None:
    assert lab.dns.zone_id(lab.zone_name) == lab.zone_id
    assert lab.dns.zone_id(lab.zone_name.rstrip(".").upper()) == lab.zone_id
    assert lab.dns.zone_id(lab.zone_id) == lab.zone_id
    assert lab.dns.zone_id(f"/hostedzone/{lab.zone_id}") == lab.zone_id


def test_reads_the_failover_records(lab: Lab) -> None:
    records = {r.set_identifier: r for r in lab.dns.records(lab.zone_name, lab.record, "A")}
    assert set(records) == {"primary", "recovery"}
    assert records["primary"].failover == "PRIMARY"
    assert records["primary"].health_check_id == lab.health_check_id
    assert records["primary"].ttl == 60
    assert records["recovery"].values == ("198.51.100.20",)
    assert records["recovery"].name == fqdn(lab.record)
    assert lab.dns.records(lab.zone_name, lab.record, "AAAA") == ()
    assert lab.dns.records(lab.zone_name, f"other.{lab.zone_name}", "A") == ()


def test_fail_over_fail_back_and_repeat(lab: Lab) -> None:
    over = lab.dns.promote(lab.zone_id, lab.record, "A", "recovery")
    assert over.changed
    assert over.change_id
    assert over.previous == "PRIMARY=primary(192.0.2.10) SECONDARY=recovery(198.51.100.20)"
    assert over.new == "PRIMARY=recovery(198.51.100.20) SECONDARY=primary(192.0.2.10)"
    assert wait_insync(lab.dns, over.change_id, timeout_s=30, interval_s=1).insync
    assert roles(lab.dns, lab.zone_id, lab.record) == {
        "primary": ("SECONDARY", ("192.0.2.10",)),
        "recovery": ("PRIMARY", ("198.51.100.20",)),
    }
    # The health check stays attached to the record it belongs to.
    primary = next(r for r in lab.dns.records(lab.zone_id, lab.record, "A") if r.set_identifier == "primary")
    assert primary.health_check_id == lab.health_check_id

    again = lab.dns.promote(lab.zone_id, lab.record, "A", "recovery")
    assert not again.changed
    assert again.change_id is None
    assert again.previous == again.new == over.new

    back = lab.dns.promote(lab.zone_name, lab.record, "A", "primary")
    assert back.changed
    assert back.change_id
    assert back.new == over.previous
    assert lab.dns.change_status(back.change_id) == "INSYNC"
    assert not lab.dns.promote(lab.zone_name, lab.record, "A", "primary").changed


def test_point_upserts_a_simple_record(lab: Lab) -> None:
    name = f"www.{lab.zone_name}"
    created = lab.dns.point(lab.zone_id, name, "CNAME", ("primary.example.net",), 300)
    assert created.changed
    assert created.previous == ""
    moved = lab.dns.point(lab.zone_id, name, "CNAME", ("recovery.example.net",), 30)
    assert (moved.previous, moved.new) == ("primary.example.net", "recovery.example.net")
    [record] = lab.dns.records(lab.zone_id, name, "CNAME")
    assert record.ttl == 30
    assert record.values == ("recovery.example.net",)
    assert not lab.dns.point(lab.zone_id, name, "CNAME", ("recovery.example.net",), 30).changed


def test_point_refuses_failover_records(lab: Lab) -> None:
    with pytest.raises(Permanent, match="promote"):
        lab.dns.point(lab.zone_id, lab.record, "A", ("203.0.113.5",), 60)


def test_missing_zone_and_record_are_not_found(lab: Lab) -> None:
    with pytest.raises(NotFound):
        lab.dns.records("ZDOESNOTEXIST0000", lab.record, "A")
    with pytest.raises(NotFound):
        lab.dns.zone_id(f"missing-{uuid.uuid4().hex[:8]}.drill.test")
    with pytest.raises(NotFound, match="'nope'"):
        lab.dns.promote(lab.zone_id, lab.record, "A", "nope")
    with pytest.raises(NotFound, match="no failover records"):
        lab.dns.promote(lab.zone_id, f"none.{lab.zone_name}", "A", "recovery")


def test_refused_change_is_permanent_naming_the_record(lab: Lab) -> None:
    outside = f"app.elsewhere-{uuid.uuid4().hex[:8]}.test."
    with pytest.raises(Permanent, match=f"A {outside} in zone.*InvalidChangeBatch") as caught:
        lab.dns.point(lab.zone_id, outside, "A", ("203.0.113.5",), 60)
    assert not isinstance(caught.value, NotFound)
