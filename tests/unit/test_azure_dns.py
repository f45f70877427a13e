"""``AzureDns`` and ``TrafficManagerDns`` through the real azure-mgmt-dns / azure-mgmt-trafficmanager clients,
with only the HTTP exchange faked (``FakeArm``, see ``test_azure_compute``): the tests check the method,
path, api-version, headers and body each switch really sends, and how error answers are translated."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator.errors import NotFound, Permanent, PermissionDenied, Transient
from orchestrator.providers.azure_dns import AzureDns, azure_dns_for, relative_name
from orchestrator.providers.azure_traffic_manager import TrafficManagerDns, traffic_manager_for
from orchestrator.providers.dns import Dns, wait_insync
from tests.unit.test_azure_compute import (
    CONNECTION_ERROR,
    ENV,
    SUB,
    TOKEN,
    Answer,
    Call,
    FakeArm,
    StaticCredential,
    _no_real_network,  # noqa: F401  # autouse: guards this module too
    arm_error,
    fast_retry,
    ok,
)

RG = "dr-dns"
ZONES = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/dnsZones"
ZONE = f"{ZONES}/example.com"
PROFILES = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/trafficmanagerprofiles"
PROFILE = f"{PROFILES}/app-dr"


# -- Azure DNS --------------------------------------------------------------------------------------------------


def zone_json() -> dict[str, Any]:
    return {"id": ZONE, "name": "example.com", "type": "Microsoft.Network/dnszones", "location": "global"}


def a_set(name: str, ips: list[str], ttl: int = 60, etag: str = "etag-1") -> dict[str, Any]:
    return {
        "id": f"{ZONE}/A/{name}",
        "name": name,
        "type": "Microsoft.Network/dnszones/A",
        "etag": etag,
        "properties": {
            "TTL": ttl,
            "fqdn": f"{name}.example.com.",
            "ARecords": [{"ipv4Address": ip} for ip in ips],
            "metadata": {"owner": "dr"},
        },
    }


@pytest.fixture
def arm() -> FakeArm:
    arm = FakeArm()
    arm.route("GET", ZONE, ok(zone_json()))
    return arm


@pytest.fixture
def dns(arm: FakeArm) -> AzureDns:
    return azure_dns_for(ENV, RG, credential=StaticCredential(), transport=arm, retry=fast_retry())


def test_azure_dns_implements_the_dns_protocol(dns: AzureDns) -> None:
    assert isinstance(dns, Dns)


def test_zone_id_by_name_and_by_id(dns: AzureDns, arm: FakeArm) -> None:
    assert dns.zone_id("example.com.") == ZONE
    assert dns.zone_id(ZONE) == ZONE
    (call,) = arm.calls  # cached after the first look-up
    assert (call.method, call.path) == ("GET", ZONE)
    assert call.api_version == "2018-05-01"
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"


def test_missing_zone_is_not_found(arm: FakeArm, dns: AzureDns) -> None:
    arm.route("GET", f"{ZONES}/nope.com", arm_error(404, "ResourceNotFound"))
    with pytest.raises(NotFound, match=r"nope\.com"):
        dns.records("nope.com", "app.nope.com", "A")


def test_zone_in_another_resource_group_is_refused(dns: AzureDns) -> None:
    other = ZONE.replace(f"/resourceGroups/{RG}/", "/resourceGroups/other/")
    with pytest.raises(Permanent, match="resource group other"):
        dns.zone_id(other)


def test_records_reads_one_record_set(dns: AzureDns, arm: FakeArm) -> None:
    arm.route("GET", f"{ZONE}/A/app", ok(a_set("app", ["10.0.0.1", "10.0.0.2"], ttl=300)))
    (record,) = dns.records("example.com", "app.example.com", "A")
    assert (record.name, record.type, record.ttl, record.values) == (
        "app.example.com.",
        "A",
        300,
        ("10.0.0.1", "10.0.0.2"),
    )
    assert record.set_identifier is None
    assert record.failover is None


def test_absent_record_is_empty(dns: AzureDns, arm: FakeArm) -> None:
    arm.route("GET", f"{ZONE}/A/app", arm_error(404, "NotFound"))
    assert dns.records("example.com", "app", "A") == ()


@pytest.mark.parametrize(
    ("name", "relative"),
    [("app.example.com", "app"), ("App.Example.com.", "app"), ("example.com", "@"), ("@", "@"), ("app", "app")],
)
def test_relative_names(name: str, relative: str) -> None:
    assert relative_name(name, "example.com") == relative


def test_name_outside_the_zone_is_refused(dns: AzureDns) -> None:
    with pytest.raises(Permanent, match="not in zone"):
        dns.records("example.com", "app.example.org", "A")


def test_point_creates_a_missing_record_set_only_if_still_missing(dns: AzureDns, arm: FakeArm) -> None:
    arm.route("GET", f"{ZONE}/A/app", arm_error(404, "NotFound"))
    arm.route("PUT", f"{ZONE}/A/app", ok(a_set("app", ["10.1.0.5"], etag="etag-new"), 201))
    result = dns.point("example.com", "app.example.com", "A", ("10.1.0.5",), 60)
    assert result.changed
    assert result.change_id == "azure-dns:etag-new"
    assert (result.previous, result.new) == ("", "10.1.0.5")
    (put,) = arm.made("PUT")
    assert put.path == f"{ZONE}/A/app"
    assert put.api_version == "2018-05-01"
    assert put.headers["If-None-Match"] == "*"
    assert "If-Match" not in put.headers
    assert put.body == {"properties": {"TTL": 60, "ARecords": [{"ipv4Address": "10.1.0.5"}]}}
    assert dns.change_status(str(result.change_id)) == "INSYNC"
    assert wait_insync(dns, str(result.change_id), timeout_s=1).insync


def test_point_updates_with_the_etag_read_and_keeps_metadata(dns: AzureDns, arm: FakeArm) -> None:
    arm.route("GET", f"{ZONE}/A/app", ok(a_set("app", ["10.0.0.1"], etag="etag-7")))
    arm.route("PUT", f"{ZONE}/A/app", ok(a_set("app", ["10.1.0.5"], ttl=30, etag="etag-8")))
    result = dns.point("example.com", "app", "A", ("10.1.0.5",), 30)
    assert (result.changed, result.previous, result.new) == (True, "10.0.0.1", "10.1.0.5")
    (put,) = arm.made("PUT")
    assert put.headers["If-Match"] == "etag-7"
    assert "If-None-Match" not in put.headers
    assert put.body["properties"] == {"TTL": 30, "ARecords": [{"ipv4Address": "10.1.0.5"}], "metadata": {"owner": "dr"}}


def test_point_already_in_effect_changes_nothing(dns: AzureDns, arm: FakeArm) -> None:
    arm.route("GET", f"{ZONE}/A/app", ok(a_set("app", ["10.0.0.2", "10.0.0.1"], ttl=60)))
    result = dns.point("example.com", "app", "A", ("10.0.0.1", "10.0.0.2"), 60)
    assert (result.changed, result.change_id) == (False, None)
    assert arm.made("PUT") == []


def test_point_rereads_after_a_concurrent_change(dns: AzureDns, arm: FakeArm) -> None:
    arm.route(
        "GET",
        f"{ZONE}/A/app",
        ok(a_set("app", ["10.0.0.1"], etag="etag-1")),
        ok(a_set("app", ["10.0.0.9"], etag="etag-2")),
    )
    arm.route("PUT", f"{ZONE}/A/app", arm_error(412, "PreconditionFailed"), ok(a_set("app", ["10.1.0.5"], etag="e3")))
    result = dns.point("example.com", "app", "A", ("10.1.0.5",), 60)
    assert result.changed
    assert result.previous == "10.0.0.9"
    assert [c.headers["If-Match"] for c in arm.made("PUT")] == ["etag-1", "etag-2"]


def test_point_cname_and_txt_bodies(dns: AzureDns, arm: FakeArm) -> None:
    arm.route("GET", f"{ZONE}/CNAME/www", arm_error(404, "NotFound"))
    arm.route("PUT", f"{ZONE}/CNAME/www", ok({"etag": "c1", "properties": {"TTL": 60}}, 201))
    dns.point("example.com", "www", "CNAME", ("app-dr.trafficmanager.net",), 60)
    assert arm.made("PUT")[0].body["properties"]["CNAMERecord"] == {"cname": "app-dr.trafficmanager.net"}
    arm.route("GET", f"{ZONE}/TXT/@", arm_error(404, "NotFound"))
    arm.route("PUT", f"{ZONE}/TXT/@", ok({"etag": "t1", "properties": {"TTL": 60}}, 201))
    dns.point("example.com", "example.com", "TXT", ("v=drill",), 60)
    assert arm.made("PUT", "/TXT/@")[0].body["properties"]["TXTRecords"] == [{"value": ["v=drill"]}]


def test_point_refuses_two_cnames_and_alias_record_sets(dns: AzureDns, arm: FakeArm) -> None:
    with pytest.raises(Permanent, match="exactly one value"):
        dns.point("example.com", "www", "CNAME", ("a.example.net", "b.example.net"), 60)
    alias = a_set("app", [])
    alias["properties"]["targetResource"] = {
        "id": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Network/publicIPAddresses/ip"
    }
    arm.route("GET", f"{ZONE}/A/app", ok(alias))
    with pytest.raises(Permanent, match="alias"):
        dns.point("example.com", "app", "A", ("10.1.0.5",), 60)
    assert arm.made("PUT") == []


def test_remove_deletes_with_the_etag_read(dns: AzureDns, arm: FakeArm) -> None:
    arm.route("GET", f"{ZONE}/A/drill-app", ok(a_set("drill-app", ["10.9.0.1"], etag="etag-4")))
    arm.route("DELETE", f"{ZONE}/A/drill-app", ok(status=200))
    result = dns.remove("example.com", "drill-app.example.com", "A")
    assert (result.changed, result.previous, result.new) == (True, "10.9.0.1", "")
    (delete,) = arm.made("DELETE")
    assert delete.path == f"{ZONE}/A/drill-app"
    assert delete.headers["If-Match"] == "etag-4"
    assert delete.api_version == "2018-05-01"
    assert dns.change_status(str(result.change_id)) == "INSYNC"


def test_remove_of_an_absent_record_changes_nothing(dns: AzureDns, arm: FakeArm) -> None:
    arm.route("GET", f"{ZONE}/A/drill-app", arm_error(404, "NotFound"))
    assert dns.remove("example.com", "drill-app", "A").changed is False
    assert arm.made("DELETE") == []


def test_promote_on_plain_azure_dns_points_to_traffic_manager(dns: AzureDns) -> None:
    with pytest.raises(Permanent, match="Traffic Manager"):
        dns.promote("example.com", "app", "A", "recovery")


def test_unknown_change_id_is_not_found(dns: AzureDns) -> None:
    with pytest.raises(NotFound):
        dns.change_status("C0123456789")


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (arm_error(403, "AuthorizationFailed"), PermissionDenied),
        (arm_error(429, "TooManyRequests"), Transient),
        (arm_error(500, "InternalServerError"), Transient),
        (CONNECTION_ERROR, Transient),
        (arm_error(400, "BadRequest", "The record set is invalid"), Permanent),
    ],
)
def test_dns_errors_are_translated(dns: AzureDns, arm: FakeArm, answer: Answer | object, kind: type[Exception]) -> None:
    arm.route("GET", f"{ZONE}/A/app", ok(a_set("app", ["10.0.0.1"])))
    arm.route("PUT", f"{ZONE}/A/app", answer)
    with pytest.raises(kind) as err:
        dns.point("example.com", "app", "A", ("10.1.0.5",), 60)
    assert type(err.value) is kind
    assert "\n" not in str(err.value)
    assert TOKEN not in str(err.value)
    assert "Azure DNS" in str(err.value) or kind is PermissionDenied


# -- Traffic Manager --------------------------------------------------------------------------------------------


def endpoint(name: str, priority: int, target: str, status: str = "Enabled") -> dict[str, Any]:
    return {
        "id": f"{PROFILE}/externalEndpoints/{name}",
        "name": name,
        "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
        "properties": {
            "target": target,
            "endpointStatus": status,
            "priority": priority,
            "endpointMonitorStatus": "Online",
        },
    }


def profile_json(*endpoints: dict[str, Any], method: str = "Priority") -> dict[str, Any]:
    return {
        "id": PROFILE,
        "name": "app-dr",
        "type": "Microsoft.Network/trafficManagerProfiles",
        "location": "global",
        "properties": {
            "profileStatus": "Enabled",
            "trafficRoutingMethod": method,
            "dnsConfig": {"relativeName": "app-dr", "fqdn": "app-dr.trafficmanager.net", "ttl": 30},
            "monitorConfig": {"protocol": "HTTPS", "port": 443, "path": "/healthz"},
            "endpoints": list(endpoints),
        },
    }


PRIMARY = endpoint("primary", 1, "app.eu-west.example.com")
RECOVERY = endpoint("recovery", 2, "app.north.example.com")


@pytest.fixture
def tm_arm() -> FakeArm:
    return FakeArm()


@pytest.fixture
def tm(tm_arm: FakeArm) -> TrafficManagerDns:
    return traffic_manager_for(ENV, RG, credential=StaticCredential(), transport=tm_arm, retry=fast_retry())


def echo(call: Call) -> Answer:
    """Traffic Manager answers a PUT with the profile as stored."""
    stored = copy.deepcopy(call.body)
    stored["properties"]["dnsConfig"]["fqdn"] = "app-dr.trafficmanager.net"
    return ok(stored)


def test_traffic_manager_implements_the_dns_protocol(tm: TrafficManagerDns) -> None:
    assert isinstance(tm, Dns)


def test_records_are_endpoints_with_the_lowest_priority_primary(tm: TrafficManagerDns, tm_arm: FakeArm) -> None:
    tm_arm.route("GET", PROFILE, ok(profile_json(RECOVERY, PRIMARY)))
    records = tm.records("app-dr", "app.example.com", "CNAME")
    assert [(r.set_identifier, r.failover, r.values) for r in records] == [
        ("primary", "PRIMARY", ("app.eu-west.example.com",)),
        ("recovery", "SECONDARY", ("app.north.example.com",)),
    ]
    assert {(r.name, r.ttl, r.type) for r in records} == {("app-dr.trafficmanager.net.", 30, "CNAME")}
    (call,) = tm_arm.calls
    assert (call.method, call.path) == ("GET", PROFILE)
    assert call.api_version


def test_promote_swaps_priorities_in_one_profile_put(tm: TrafficManagerDns, tm_arm: FakeArm) -> None:
    tm_arm.route("GET", PROFILE, ok(profile_json(PRIMARY, RECOVERY)))
    tm_arm.route("PUT", PROFILE, echo)
    result = tm.promote("app-dr", "app.example.com", "CNAME", "recovery")
    assert result.changed
    assert str(result.change_id).startswith("azure-tm:")
    assert result.previous == "PRIMARY=primary(app.eu-west.example.com) SECONDARY=recovery(app.north.example.com)"
    assert result.new == "PRIMARY=recovery(app.north.example.com) SECONDARY=primary(app.eu-west.example.com)"
    (put,) = tm_arm.made("PUT")
    assert put.path == PROFILE
    assert put.api_version == tm_arm.calls[0].api_version
    sent = {e["name"]: e for e in put.body["properties"]["endpoints"]}
    assert sent["recovery"]["properties"]["priority"] == 1
    assert sent["primary"]["properties"]["priority"] == 2
    # Everything else about the profile and its endpoints goes back as read.
    assert sent["recovery"]["type"] == "Microsoft.Network/trafficManagerProfiles/externalEndpoints"
    assert sent["recovery"]["properties"]["target"] == "app.north.example.com"
    assert put.body["properties"]["trafficRoutingMethod"] == "Priority"
    assert put.body["properties"]["monitorConfig"]["path"] == "/healthz"
    assert put.body["properties"]["dnsConfig"]["relativeName"] == "app-dr"
    assert tm.change_status(str(result.change_id)) == "INSYNC"


def test_promote_keeps_the_order_of_the_others(tm: TrafficManagerDns, tm_arm: FakeArm) -> None:
    third = endpoint("cold", 30, "app.cold.example.com")
    tm_arm.route("GET", PROFILE, ok(profile_json(endpoint("a", 10, "a.x"), endpoint("b", 20, "b.x"), third)))
    tm_arm.route("PUT", PROFILE, echo)
    tm.promote("app-dr", "app", "CNAME", "cold")
    (put,) = tm_arm.made("PUT")
    assert {e["name"]: e["properties"]["priority"] for e in put.body["properties"]["endpoints"]} == {
        "cold": 1,
        "a": 2,
        "b": 3,
    }


def test_promote_already_in_effect_sends_nothing(tm: TrafficManagerDns, tm_arm: FakeArm) -> None:
    tm_arm.route("GET", PROFILE, ok(profile_json(PRIMARY, RECOVERY)))
    result = tm.promote("app-dr", "app", "CNAME", "primary")
    assert (result.changed, result.change_id) == (False, None)
    assert result.previous == result.new
    assert tm_arm.made("PUT") == []


def test_promote_unknown_endpoint_is_not_found(tm: TrafficManagerDns, tm_arm: FakeArm) -> None:
    tm_arm.route("GET", PROFILE, ok(profile_json(PRIMARY, RECOVERY)))
    with pytest.raises(NotFound, match="primary, recovery"):
        tm.promote("app-dr", "app", "CNAME", "nope")


def test_promote_needs_a_priority_profile(tm: TrafficManagerDns, tm_arm: FakeArm) -> None:
    tm_arm.route("GET", PROFILE, ok(profile_json(PRIMARY, RECOVERY, method="Weighted")))
    with pytest.raises(Permanent, match="Weighted"):
        tm.promote("app-dr", "app", "CNAME", "recovery")


def test_promote_refuses_a_disabled_endpoint(tm: TrafficManagerDns, tm_arm: FakeArm) -> None:
    tm_arm.route("GET", PROFILE, ok(profile_json(PRIMARY, endpoint("recovery", 2, "r.x", status="Disabled"))))
    with pytest.raises(Permanent, match="disabled"):
        tm.promote("app-dr", "app", "CNAME", "recovery")
    assert tm_arm.made("PUT") == []


def test_missing_profile_is_not_found(tm: TrafficManagerDns, tm_arm: FakeArm) -> None:
    tm_arm.route("GET", f"{PROFILES}/ghost", arm_error(404, "ResourceNotFound"))
    with pytest.raises(NotFound, match="ghost"):
        tm.promote("ghost", "app", "CNAME", "recovery")


def test_point_and_remove_on_traffic_manager_are_refused(tm: TrafficManagerDns, tm_arm: FakeArm) -> None:
    with pytest.raises(Permanent, match="promote"):
        tm.point("app-dr", "app", "CNAME", ("x",), 60)
    with pytest.raises(Permanent, match="never removes"):
        tm.remove("app-dr", "app", "CNAME")
    assert tm_arm.calls == []


@pytest.mark.parametrize(
    ("answer", "kind", "puts"),
    [
        (arm_error(403, "AuthorizationFailed"), PermissionDenied, 1),
        (arm_error(409, "Conflict", "Priority values must be unique"), Permanent, 1),
        (arm_error(429, "TooManyRequests"), Transient, 3),
        (arm_error(500, "InternalServerError"), Transient, 3),
        (CONNECTION_ERROR, Transient, 3),
    ],
)
def test_promote_errors_are_translated(
    tm: TrafficManagerDns, tm_arm: FakeArm, answer: Answer | object, kind: type[Exception], puts: int
) -> None:
    tm_arm.route("GET", PROFILE, ok(profile_json(PRIMARY, RECOVERY)))
    tm_arm.route("PUT", PROFILE, answer)
    with pytest.raises(kind) as err:
        tm.promote("app-dr", "app", "CNAME", "recovery")
    assert type(err.value) is kind
    assert "app-dr" in str(err.value)
    assert TOKEN not in str(err.value)
    # Each retry reads the profile again before writing, so a lost answer cannot resend a stale profile.
    assert len(tm_arm.made("PUT")) == puts
    assert len(tm_arm.made("GET")) == puts
